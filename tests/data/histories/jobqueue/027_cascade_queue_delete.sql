ALTER TABLE jobs DROP CONSTRAINT jobs_queue_id_fkey,
    ADD CONSTRAINT jobs_queue_id_fkey FOREIGN KEY (queue_id) REFERENCES queues (id)
        ON DELETE CASCADE;
