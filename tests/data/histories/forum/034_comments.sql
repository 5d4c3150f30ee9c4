COMMENT ON TABLE forums IS 'Top-level sections (were boards until migration 013)';
COMMENT ON COLUMN posts.search IS 'Maintained by the posts_search trigger';
COMMENT ON INDEX users_username_live IS 'usernames are unique among live users, case-insensitively';
