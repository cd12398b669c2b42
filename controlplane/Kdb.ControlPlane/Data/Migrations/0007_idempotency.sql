CREATE TABLE idempotency_keys (
    "Caller" character varying(64) NOT NULL,
    "Key" character varying(100) NOT NULL,
    "RequestHash" character varying(64) NOT NULL,
    "Status" integer NOT NULL,
    "ProtectedResponse" text,
    "ContentType" text,
    "CreatedAt" timestamp with time zone NOT NULL,
    CONSTRAINT "PK_idempotency_keys" PRIMARY KEY ("Caller", "Key")
);




CREATE INDEX "IX_idempotency_keys_CreatedAt" ON idempotency_keys ("CreatedAt");
