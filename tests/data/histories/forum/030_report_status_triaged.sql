ALTER TYPE report_status ADD VALUE 'triaged' AFTER 'open';
