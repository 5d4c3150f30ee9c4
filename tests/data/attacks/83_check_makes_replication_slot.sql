-- expect: loads
-- apply exits: 3
-- apply says: pg_create_physical_replication_slot (it acts on the server beyond
-- A replication slot belongs to the whole server, and one that reserves WAL keeps every
-- segment from then on, until the disk is full. PUBLIC may run the function (it checks
-- the replication right, which a superuser has). On 3fbfd18 apply's shadow validation
-- made this slot while validating the CHECK on its copy of the rows (exit 2 after).
CREATE TABLE accounts (id int PRIMARY KEY, owner text,
  CONSTRAINT hold CHECK ((pg_create_physical_replication_slot('lockplane_attack_slot', true)).slot_name IS NOT NULL AND id > 0));
