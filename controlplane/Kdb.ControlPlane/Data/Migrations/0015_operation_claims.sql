-- Operation claims (docs/provisioning.md, moves): the provisioning attempt working on a running operation, when it last
-- renewed its lease, and the shard groups it holds (a move's source and target).
ALTER TABLE operations ADD "ClaimAttemptId" character varying(64);
ALTER TABLE operations ADD "ClaimedAt" timestamp with time zone;
ALTER TABLE operations ADD "ClaimGroups" bigint[];
