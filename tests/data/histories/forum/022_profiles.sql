CREATE TABLE profiles (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    bio text,
    avatar_url text
);
INSERT INTO profiles (user_id) SELECT id FROM users;
