CREATE TABLE usage_hourly (
    "DatabaseId" character varying(30) NOT NULL,
    "HourStart" timestamp with time zone NOT NULL,
    "RowsRead" bigint NOT NULL,
    "RowsWritten" bigint NOT NULL,
    "BytesRead" bigint NOT NULL,
    "BytesWritten" bigint NOT NULL,
    "StorageBytes" bigint NOT NULL,
    "CpuMs" bigint NOT NULL,
    "EgressBytes" bigint NOT NULL,
    "Connections" bigint NOT NULL,
    CONSTRAINT "PK_usage_hourly" PRIMARY KEY ("DatabaseId", "HourStart")
);


CREATE TABLE usage_receipts (
    "Source" character varying(64) NOT NULL,
    "Sequence" bigint NOT NULL,
    CONSTRAINT "PK_usage_receipts" PRIMARY KEY ("Source", "Sequence")
);


