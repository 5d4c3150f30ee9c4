ALTER TABLE posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY posts_visible ON posts FOR SELECT USING (deleted_at IS NULL);
CREATE POLICY posts_owner ON posts FOR ALL
    USING (author_id = current_setting('app.user_id', true)::bigint);
