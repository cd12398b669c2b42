CREATE SEQUENCE route_version_seq START WITH 1 INCREMENT BY 1 NO CYCLE;

ALTER TABLE databases ADD COLUMN "RouteVersion" bigint NOT NULL DEFAULT (nextval('route_version_seq'));

CREATE INDEX "IX_databases_RouteVersion" ON databases ("RouteVersion");

CREATE TABLE nodes (
    "NodeId" character varying(64) NOT NULL,
    "PgEndpoint" text NOT NULL,
    "InternalEndpoint" text NOT NULL,
    "HttpEndpoint" text NOT NULL,
    "Capacity" integer NOT NULL,
    "GroupsJson" text NOT NULL,
    "LastHeartbeatAt" timestamp with time zone NOT NULL,
    CONSTRAINT "PK_nodes" PRIMARY KEY ("NodeId")
);
