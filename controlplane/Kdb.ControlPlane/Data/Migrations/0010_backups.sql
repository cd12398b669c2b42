CREATE TABLE backups (
    "Id" character varying(30) NOT NULL,
    "DatabaseId" character varying(30) NOT NULL,
    "OrgId" character varying(30) NOT NULL,
    "Status" character varying(20) NOT NULL,
    "Verified" boolean NOT NULL,
    "SizeBytes" bigint NOT NULL,
    "Sha256" character varying(64),
    "RaftIndex" bigint NOT NULL,
    "KeyId" character varying(64),
    "Error" text,
    "OperationId" character varying(30) NOT NULL,
    "CreatedAt" timestamp with time zone NOT NULL,
    "CompletedAt" timestamp with time zone,
    "ExpiresAt" timestamp with time zone NOT NULL,
    "VerificationDetails" text,
    "VerifiedAt" timestamp with time zone,
    CONSTRAINT "PK_backups" PRIMARY KEY ("Id")
);

CREATE INDEX "IX_backups_DatabaseId_Id" ON backups ("DatabaseId", "Id");

CREATE INDEX "IX_backups_ExpiresAt" ON backups ("ExpiresAt");

CREATE TABLE backup_schedules (
    "DatabaseId" character varying(30) NOT NULL,
    "OrgId" character varying(30) NOT NULL,
    "Cron" character varying(100) NOT NULL,
    "RetentionDays" integer NOT NULL,
    "Enabled" boolean NOT NULL,
    "NextRunAt" timestamp with time zone NOT NULL,
    "LastRunAt" timestamp with time zone,
    "UpdatedAt" timestamp with time zone NOT NULL,
    CONSTRAINT "PK_backup_schedules" PRIMARY KEY ("DatabaseId")
);

CREATE INDEX "IX_backup_schedules_NextRunAt" ON backup_schedules ("NextRunAt");

CREATE TABLE scheduled_jobs (
    "Name" character varying(64) NOT NULL,
    "NextRunAt" timestamp with time zone NOT NULL,
    "LastRunAt" timestamp with time zone,
    CONSTRAINT "PK_scheduled_jobs" PRIMARY KEY ("Name")
);

CREATE TABLE backup_keys (
    "KeyId" character varying(30) NOT NULL,
    "OrgId" character varying(30) NOT NULL,
    "ProtectedKey" text NOT NULL,
    "CreatedAt" timestamp with time zone NOT NULL,
    CONSTRAINT "PK_backup_keys" PRIMARY KEY ("KeyId")
);

CREATE INDEX "IX_backup_keys_OrgId" ON backup_keys ("OrgId");
