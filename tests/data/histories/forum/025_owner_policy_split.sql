DROP POLICY posts_owner ON posts;
CREATE POLICY posts_owner_update ON posts FOR UPDATE
    USING (author_id = current_setting('app.user_id', true)::bigint)
    WITH CHECK (author_id = current_setting('app.user_id', true)::bigint AND deleted_at IS NULL);
CREATE POLICY posts_owner_insert ON posts FOR INSERT
    WITH CHECK (author_id = current_setting('app.user_id', true)::bigint);
