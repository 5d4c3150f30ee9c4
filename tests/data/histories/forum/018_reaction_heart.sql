ALTER TYPE reaction ADD VALUE 'heart' BEFORE 'laugh';
