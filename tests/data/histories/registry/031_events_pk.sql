ALTER TABLE registry.events ADD PRIMARY KEY (id);
CREATE INDEX events_at ON registry.events USING brin (at);
