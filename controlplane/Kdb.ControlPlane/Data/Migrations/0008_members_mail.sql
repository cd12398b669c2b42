CREATE TABLE invitations (
    "Id" character varying(30) NOT NULL,
    "OrgId" character varying(30) NOT NULL,
    "Email" character varying(254) NOT NULL,
    "NormalizedEmail" character varying(254) NOT NULL,
    "Role" character varying(20) NOT NULL,
    "TokenHash" character varying(64) NOT NULL,
    "InvitedBy" character varying(64) NOT NULL,
    "CreatedAt" timestamp with time zone NOT NULL,
    "ExpiresAt" timestamp with time zone NOT NULL,
    "AcceptedAt" timestamp with time zone,
    "AcceptedBy" character varying(64),
    CONSTRAINT "PK_invitations" PRIMARY KEY ("Id")
);

CREATE TABLE password_resets (
    "TokenHash" character varying(64) NOT NULL,
    "UserId" text NOT NULL,
    "CreatedAt" timestamp with time zone NOT NULL,
    "ExpiresAt" timestamp with time zone NOT NULL,
    "UsedAt" timestamp with time zone,
    CONSTRAINT "PK_password_resets" PRIMARY KEY ("TokenHash")
);

CREATE INDEX "IX_invitations_NormalizedEmail" ON invitations ("NormalizedEmail");

CREATE INDEX "IX_invitations_OrgId" ON invitations ("OrgId");

CREATE INDEX "IX_password_resets_UserId" ON password_resets ("UserId");
