CREATE TYPE user_role AS ENUM ('member', 'moderator', 'admin');
ALTER TABLE users ADD COLUMN role user_role NOT NULL DEFAULT 'member';
