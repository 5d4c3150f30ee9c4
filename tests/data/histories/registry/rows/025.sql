INSERT INTO registry.downloads VALUES (5, '2025-02-01', 7), (5, '2023-12-31', 1);
INSERT INTO registry.api_tokens (account_id, token_hash, scopes)
    VALUES (1, '\x0102', '{publish}'), (2, '\x0304', '{admin}');
