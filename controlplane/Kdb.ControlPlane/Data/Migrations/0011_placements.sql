ALTER TABLE databases ADD COLUMN "ReplicaNodeIds" text[] NOT NULL DEFAULT '{}';

CREATE TABLE group_leaders (
    "GroupId" bigint NOT NULL,
    "LeaderNodeId" character varying(64) NOT NULL,
    "Term" bigint NOT NULL,
    "ReportedAt" timestamp with time zone NOT NULL,
    CONSTRAINT "PK_group_leaders" PRIMARY KEY ("GroupId")
);

CREATE INDEX "IX_databases_OrgId_Id" ON databases ("OrgId", "Id") WHERE "Status" <> 'deleted';

CREATE INDEX "IX_databases_GroupId" ON databases ("GroupId");
