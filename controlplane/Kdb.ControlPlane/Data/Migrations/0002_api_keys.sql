CREATE TABLE api_keys (
    "Id" character varying(30) NOT NULL,
    "OrgId" character varying(30) NOT NULL,
    "Name" character varying(200) NOT NULL,
    "Role" character varying(20) NOT NULL,
    "SecretHash" character varying(64) NOT NULL,
    "CreatedBy" text NOT NULL,
    "CreatedAt" timestamp with time zone NOT NULL,
    "ExpiresAt" timestamp with time zone,
    "LastUsedAt" timestamp with time zone,
    CONSTRAINT "PK_api_keys" PRIMARY KEY ("Id")
);

CREATE INDEX "IX_api_keys_OrgId" ON api_keys ("OrgId");
