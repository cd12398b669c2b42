CREATE INDEX "IX_audit_log_Actor_Id_NoOrg" ON audit_log ("Actor", "Id") WHERE "OrgId" IS NULL;

CREATE INDEX "IX_audit_log_ResourceId_Id_NoOrg" ON audit_log ("ResourceId", "Id") WHERE "OrgId" IS NULL;
