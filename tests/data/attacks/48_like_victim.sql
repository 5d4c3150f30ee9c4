-- expect: failed
-- LIKE copies another relation's definition: only relations in the scratch database exist.
CREATE TABLE stolen (LIKE "@VICTIM_DB@".public.secrets INCLUDING ALL);
