ALTER TYPE registry.dep_kind ADD VALUE 'optional';
