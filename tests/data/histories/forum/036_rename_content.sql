-- post_feed keeps the name content for its column: clients read the view.
ALTER TABLE posts RENAME COLUMN content TO body_markdown;
