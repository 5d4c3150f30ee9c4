ALTER TABLE runs DROP CONSTRAINT runs_workflow_id_fkey,
    ADD CONSTRAINT runs_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES workflows (id)
        ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED;
