"""access log hash chain: seq, prev_hash and hash on every entry (append-only, tamper-evident);
message.unrouted_reason (a SIP without consent is stored but not routed)

Existing entries are chained in id order with the same encoding the router uses
(services.router.audit.access_log.entry_hash).

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-01 09:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from services.router.audit.access_log import GENESIS, canonical_time, entry_hash

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("unrouted_reason", sa.String(length=200), nullable=True))
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(sa.Column("seq", _ID, nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    table = sa.table(
        "access_log",
        *(sa.column(name) for name in ("id", "seq", "prev_hash", "hash", "actor", "role")),
        *(sa.column(name) for name in ("kind", "pseudonym", "message_id", "reason")),
        sa.column("at", sa.DateTime()),
    )
    prev = GENESIS
    rows = conn.execute(sa.select(table).order_by(table.c.id)).all()
    for seq, row in enumerate(rows, start=1):
        fields = dict(row._mapping)
        fields["seq"] = seq
        at: datetime = fields["at"]  # stored as naive UTC (services.messaging.db.UtcDateTime)
        fields["at"] = canonical_time(at if at.tzinfo else at.replace(tzinfo=UTC))
        digest = entry_hash(fields, prev)
        conn.execute(
            table.update().where(table.c.id == row.id).values(seq=seq, prev_hash=prev, hash=digest)
        )
        prev = digest
    with op.batch_alter_table("access_log") as batch:
        batch.alter_column("seq", existing_type=_ID, nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint("uq_access_log_seq", ["seq"])
    _refuse_changes()


def _refuse_changes() -> None:
    """Append-only in the database too: UPDATE and DELETE (and TRUNCATE on PostgreSQL) of an
    access-log row fail. Whoever can drop the trigger can still tamper; the chain shows it."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'access_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log "
            "FOR EACH ROW EXECUTE FUNCTION access_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER access_log_no_{verb.lower()} BEFORE {verb} ON access_log "
                "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER access_log_no_truncate ON access_log")
        op.execute("DROP TRIGGER access_log_append_only ON access_log")
        op.execute("DROP FUNCTION access_log_append_only()")
    else:
        op.execute("DROP TRIGGER access_log_no_update")
        op.execute("DROP TRIGGER access_log_no_delete")
    with op.batch_alter_table("access_log") as batch:
        batch.drop_constraint("uq_access_log_seq", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("unrouted_reason")
