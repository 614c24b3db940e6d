"""The DuckDB schema, as ordered migrations recorded in `schema_migrations`.

Times are naive UTC TIMESTAMPs (no TIMESTAMPTZ: it needs pytz on fetch and warns under pandas 3).
Money is DECIMAL(18,4) with its currency beside it; IDs are VARCHAR.
Few secondary indexes on purpose: DuckDB's zone maps serve most filters, and indexes block
later ALTERs (docs/streamlit_duckdb.md B6).
"""

from __future__ import annotations

from returns_core import domain

# returns.lines from return_line_items: migration 2's backfill. Tests that write line items by hand
# run it too. Part of a migration: change it only by adding a new migration.
FILL_LINES_SQL = """
UPDATE returns r SET lines = li.lines
FROM (
    SELECT shop_id, return_id,
           list(struct_pack(seller_sku := seller_sku, sku_id := sku_id, product_name := product_name,
                            refund_currency := refund_currency, refund_total := refund_total)
                ORDER BY return_line_item_id) AS lines
    FROM return_line_items GROUP BY shop_id, return_id
) li
WHERE li.shop_id = r.shop_id AND li.return_id = r.return_id
"""

# The daily pre-aggregates (store/rollups.py). Each is a contribution: grouped by its key, what a set of
# returns adds to its rows, from `{rows}` (the columns of ROLLUP_ROW_COLUMNS and a `sign`: +1 for a return
# as it is, -1 for one as it was before a write). Migration 12 adds every return; a write adds its
# returns as they are now and takes away what they were. Part of a migration: change only with a new one.
ROLLUP_ROW_COLUMNS = ("r.shop_id, r.return_id, r.kind, r.created_at, r.type, r.status, r.reason_code, "
                      "r.reason_text, r.refund_currency, r.refund_total, r.lines")
_DAY = """r.shop_id, r.kind, date_trunc('day', r.created_at) AS created_at, r.type, r.status, r.reason_code,
          r.reason_text"""
_DAY_KEY = ("shop_id", "kind", "created_at", "type", "status", "reason_code", "reason_text")
ROLLUPS: list[tuple[str, tuple[str, ...], str]] = [  # (table, key columns, contribution)
    ("daily_returns", (*_DAY_KEY, "refund_currency"), f"""
        SELECT {_DAY}, r.refund_currency, sum(r.sign) AS returns,
               sum(r.sign * CAST(r.refund_total IS NOT NULL AS INTEGER)) AS with_refund,
               sum(r.sign * r.refund_total) AS refund_total
        FROM {{rows}} r GROUP BY ALL"""),
    # one row per return and SKU first: a return counts once for a SKU however many of its items it is
    ("daily_skus", (*_DAY_KEY, "sku", "product_name", "refund_currency"), f"""
        SELECT {", ".join(_DAY_KEY)}, sku, product_name, refund_currency, sum(sign) AS returns,
               sum(sign * units) AS units, coalesce(sum(sign * refund_total), 0) AS refund_total
        FROM (SELECT {_DAY}, r.return_id, r.sign, coalesce(li.seller_sku, li.sku_id) AS sku,
                     max(li.product_name) AS product_name, max(li.refund_currency) AS refund_currency,
                     count(*) AS units, sum(li.refund_total) AS refund_total
              FROM (SELECT *, unnest(lines) AS li FROM {{rows}}) r GROUP BY ALL)
        GROUP BY ALL"""),
    ("daily_products", (*_DAY_KEY, "product", "skus", "refund_currency"), f"""
        SELECT {", ".join(_DAY_KEY)}, product, skus, refund_currency, sum(sign) AS returns,
               coalesce(sum(sign * refund_total), 0) AS refund_total
        FROM (SELECT {_DAY}, r.return_id, r.sign, coalesce(li.product_name, '(no product name)') AS product,
                     list_sort(list(DISTINCT coalesce(li.seller_sku, li.sku_id, '(no SKU)'))) AS skus,
                     max(li.refund_currency) AS refund_currency, sum(li.refund_total) AS refund_total
              FROM (SELECT *, unnest(lines) AS li FROM {{rows}}) r GROUP BY r.shop_id, r.kind, r.created_at,
                   r.type, r.status, r.reason_code, r.reason_text, r.return_id, r.sign, product)
        GROUP BY ALL"""),
]
ALL_RETURNS = f"(SELECT {ROLLUP_ROW_COLUMNS}, 1 AS sign FROM returns r)"
_FILL_ALL = "".join(f"INSERT INTO {table} BY NAME {contribution.format(rows=ALL_RETURNS)};\n"
                    for table, _, contribution in ROLLUPS)

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE accounts (
            shop_id                  VARCHAR PRIMARY KEY,   -- TikTok's shop id: "Account ID" in the grid
            name                     VARCHAR NOT NULL UNIQUE,
            shop_name                VARCHAR,
            region                   VARCHAR,
            shop_cipher              VARCHAR,
            app_key                  VARCHAR NOT NULL,
            app_secret_enc           VARCHAR NOT NULL,      -- encrypted (returns_core.secretbox)
            access_token_enc         VARCHAR,
            refresh_token_enc        VARCHAR,
            access_token_expires_at  TIMESTAMP,
            refresh_token_expires_at TIMESTAMP,
            api_base                 VARCHAR NOT NULL,
            auth_base                VARCHAR NOT NULL,
            is_sandbox               BOOLEAN NOT NULL DEFAULT false,
            enabled                  BOOLEAN NOT NULL DEFAULT true,
            auth_state               VARCHAR NOT NULL DEFAULT 'ok',  -- 'ok' | 'invalid' (token revoked)
            auth_error               VARCHAR,
            created_at               TIMESTAMP NOT NULL,
            updated_at               TIMESTAMP NOT NULL
        );

        CREATE TABLE returns (
            shop_id              VARCHAR NOT NULL,
            return_id            VARCHAR NOT NULL,
            order_id             VARCHAR,
            return_type          VARCHAR,          -- TikTok's, verbatim
            type                 VARCHAR,          -- display word (domain.TYPE_MAP)
            marketplace_status   VARCHAR,          -- TikTok's return_status, verbatim
            status               VARCHAR,          -- our processing status (domain.STATUSES); NULL if never mapped
            unmapped             BOOLEAN NOT NULL DEFAULT false,
            mismatch             BOOLEAN NOT NULL DEFAULT false,
            arbitration_status   VARCHAR,
            role                 VARCHAR,
            reason_code          VARCHAR,
            reason_text          VARCHAR,
            created_at           TIMESTAMP,
            updated_at           TIMESTAMP,
            refund_currency      VARCHAR,
            refund_total         DECIMAL(18,4),
            refund_subtotal      DECIMAL(18,4),
            refund_shipping_fee  DECIMAL(18,4),
            refund_tax           DECIMAL(18,4),
            next_action          VARCHAR,
            due_by               TIMESTAMP,        -- earliest seller_next_action_response deadline
            tracking_number      VARCHAR,
            shipping_provider    VARCHAR,
            seller_skus          VARCHAR,          -- space-joined seller SKUs and SKU ids, for search
            review_outcome       VARCHAR,          -- local: manager sign-off (ok / quality issue / suspected abuse)
            reviewed_by          VARCHAR,
            reviewed_at          TIMESTAMP,
            payload              JSON,             -- TikTok's return object as received
            first_seen_at        TIMESTAMP NOT NULL,
            last_synced_at       TIMESTAMP NOT NULL,
            PRIMARY KEY (shop_id, return_id)
        );

        CREATE TABLE return_line_items (
            shop_id              VARCHAR NOT NULL,
            return_id            VARCHAR NOT NULL,
            return_line_item_id  VARCHAR NOT NULL,
            order_line_item_id   VARCHAR,
            sku_id               VARCHAR,
            seller_sku           VARCHAR,
            sku_name             VARCHAR,
            product_name         VARCHAR,
            product_image_url    VARCHAR,
            refund_currency      VARCHAR,
            refund_total         DECIMAL(18,4),
            PRIMARY KEY (shop_id, return_id, return_line_item_id)
        );

        -- TikTok's own event records (Get Return Records), fetched on demand and kept.
        CREATE TABLE return_records (
            shop_id      VARCHAR NOT NULL,
            return_id    VARCHAR NOT NULL,
            seq          INTEGER NOT NULL,
            event        VARCHAR,
            role         VARCHAR,
            description  VARCHAR,
            reason_text  VARCHAR,
            note         VARCHAR,
            created_at   TIMESTAMP,
            payload      JSON,
            fetched_at   TIMESTAMP NOT NULL,
            PRIMARY KEY (shop_id, return_id, seq)
        );

        -- Our own append-only history: status changes (by sync or by hand), sign-offs, notes,
        -- actions sent to TikTok and their results. Never updated, never deleted.
        CREATE SEQUENCE history_seq;
        CREATE TABLE history (
            id         BIGINT PRIMARY KEY DEFAULT nextval('history_seq'),
            shop_id    VARCHAR NOT NULL,
            return_id  VARCHAR NOT NULL,
            happened_at TIMESTAMP NOT NULL,
            actor      VARCHAR NOT NULL,     -- a user's name or email, or 'sync'
            kind       VARCHAR NOT NULL,     -- created | status | marketplace_status | sign_off | note | action
            old_value  VARCHAR,
            new_value  VARCHAR,
            note       VARCHAR,
            details    JSON
        );

        CREATE SEQUENCE sync_runs_seq;
        CREATE TABLE sync_runs (
            id              BIGINT PRIMARY KEY DEFAULT nextval('sync_runs_seq'),
            shop_id         VARCHAR NOT NULL,
            started_at      TIMESTAMP NOT NULL,
            finished_at     TIMESTAMP,
            duration_s      DOUBLE,
            full_sync       BOOLEAN NOT NULL DEFAULT false,
            state           VARCHAR NOT NULL,  -- 'running' | 'ok' | 'failed'
            pages           INTEGER NOT NULL DEFAULT 0,
            new_count       INTEGER NOT NULL DEFAULT 0,
            updated_count   INTEGER NOT NULL DEFAULT 0,
            unchanged_count INTEGER NOT NULL DEFAULT 0,
            error           VARCHAR,
            trigger         VARCHAR            -- 'cli' | 'app' | 'auto' | 'test'
        );

        -- Per account: the update_time watermark (Unix seconds) of the last fully committed page.
        CREATE TABLE sync_state (
            shop_id     VARCHAR PRIMARY KEY,
            watermark   BIGINT,
            updated_at  TIMESTAMP NOT NULL
        );

        -- Approve / reject sent to TikTok, keyed by idempotency key so a retry never acts twice.
        CREATE TABLE actions (
            idempotency_key VARCHAR PRIMARY KEY,
            shop_id         VARCHAR NOT NULL,
            return_id       VARCHAR NOT NULL,
            action          VARCHAR NOT NULL,   -- 'approve' | 'reject'
            decision        VARCHAR NOT NULL,
            request         JSON,
            state           VARCHAR NOT NULL,   -- 'sent' | 'ok' | 'failed'
            result          VARCHAR,
            actor           VARCHAR NOT NULL,
            created_at      TIMESTAMP NOT NULL,
            finished_at     TIMESTAMP
        );

        -- Small app settings (auto-sync schedule, demo shop on/off), as text.
        CREATE TABLE settings (
            key         VARCHAR PRIMARY KEY,
            value       VARCHAR,
            updated_at  TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        2,
        # Each return carries its line items' SKUs, products and refunds as a list, so analytics
        # and the SKU filter read the filtered returns only: joining return_line_items scanned all
        # of its rows for every chart (1.3M at a million returns). return_line_items stays the
        # record of each item; ingest writes both in the same transaction.
        # One-time cost of the UPDATE: db.UPGRADE_TIME (a list column updates as delete + insert
        # in DuckDB), announced before it runs.
        """
        ALTER TABLE returns ADD COLUMN lines STRUCT(
            seller_sku VARCHAR, sku_id VARCHAR, product_name VARCHAR,
            refund_currency VARCHAR, refund_total DECIMAL(18,4)
        )[];

        """ + FILL_LINES_SQL,
    ),
    (
        3,
        # TikTok's webhooks, stored before they are answered (returns_core.webhooks): one row per
        # event, keyed by TikTok's tts_notification_id so a repeated delivery is counted, not stored
        # twice. The event is a signal: processing re-reads the return from TikTok; `event_status`
        # is only what the event said.
        """
        CREATE SEQUENCE webhook_events_seq;
        CREATE TABLE webhook_events (
            tts_notification_id VARCHAR PRIMARY KEY,
            seq              BIGINT NOT NULL DEFAULT nextval('webhook_events_seq'),  -- arrival order
            event_type       INTEGER,            -- TikTok's `type` (12 RETURN_STATUS_CHANGE, ...)
            shop_id          VARCHAR,
            return_id        VARCHAR,            -- data.return_id of a RETURN_STATUS_CHANGE
            event_status     VARCHAR,            -- data.return_status as the event said it
            event_time       TIMESTAMP,          -- TikTok's `timestamp`
            received_at      TIMESTAMP NOT NULL,
            last_received_at TIMESTAMP NOT NULL,
            deliveries       INTEGER NOT NULL DEFAULT 1,  -- TikTok delivers at least once
            verification     VARCHAR NOT NULL,   -- 'verified' | 'unknown_shop' (signed by our app, no account)
            state            VARCHAR NOT NULL,   -- pending | processing | done | skipped | failed | kept
            attempts         INTEGER NOT NULL DEFAULT 0,
            next_attempt_at  TIMESTAMP,
            claimed_at       TIMESTAMP,
            processed_at     TIMESTAMP,
            outcome          VARCHAR,            -- what processing did, or why it failed, in words
            alert            VARCHAR,            -- 'wanted': an alert to send (alerts engine); 'taken' once it is
            body             VARCHAR             -- the raw body as received
        );
        """,
    ),
    (
        4,
        # Alerts (returns_core.alerts, store/alerts.py): where they go, what was raised once per
        # subject and rule (the UNIQUE key is the claim), and each delivery's outcome.
        """
        CREATE SEQUENCE alert_channels_seq;
        CREATE TABLE alert_channels (
            id          BIGINT PRIMARY KEY DEFAULT nextval('alert_channels_seq'),
            name        VARCHAR NOT NULL,
            shown       VARCHAR NOT NULL,      -- redacted: scheme and host only
            url_enc     VARCHAR NOT NULL,      -- the apprise URL, encrypted (returns_core.secretbox)
            created_at  TIMESTAMP NOT NULL
        );

        CREATE SEQUENCE alerts_seq;
        CREATE TABLE alerts (
            id          BIGINT PRIMARY KEY DEFAULT nextval('alerts_seq'),
            rule        VARCHAR NOT NULL,      -- due_soon | overdue | spike | authorization | sync_failing
            shop_id     VARCHAR NOT NULL,      -- '' when about no single shop
            subject     VARCHAR NOT NULL,      -- a return id, a spike, 'expiring', 'revoked', 'sync'
            occurrence  VARCHAR NOT NULL,      -- the deadline, the spike's day, the expiry day, the first failed run
            title       VARCHAR NOT NULL,
            message     VARCHAR NOT NULL,
            link        VARCHAR,
            ongoing     BOOLEAN NOT NULL DEFAULT false,  -- raised again only after cleared_at
            raised_at   TIMESTAMP NOT NULL,
            raised_by   VARCHAR NOT NULL,      -- 'app' | 'cli' | 'webhook'
            cleared_at  TIMESTAMP,
            UNIQUE (rule, shop_id, subject, occurrence)
        );

        CREATE TABLE alert_deliveries (
            alert_id        BIGINT NOT NULL,
            channel_id      BIGINT NOT NULL,
            channel         VARCHAR NOT NULL,  -- name and redacted form, kept after the channel is removed
            state           VARCHAR NOT NULL,  -- 'claimed' | 'sent' | 'retrying' | 'failed' (gave up)
            attempts        INTEGER NOT NULL DEFAULT 0,
            last_error      VARCHAR,           -- free of the channel's secrets
            next_attempt_at TIMESTAMP NOT NULL,
            leased_until    TIMESTAMP,         -- a sender is on it; past this, it died and another retries
            sent_at         TIMESTAMP,
            PRIMARY KEY (alert_id, channel_id)
        );
        """,
    ),
    (
        5,
        # One seller authorization (a grant) can cover several shops, each its own account with a
        # copy of the grant's tokens. TikTok retires a refresh token when it is used, so a refresh
        # through one shop must reach every shop of the grant (store/accounts.save_tokens writes
        # them all) and is done once, under the grant's lock (returns_core.tiktok_session).
        # NULL for accounts from before this: they are linked by their (decrypted) tokens on first
        # use, which only Python can do (store/accounts.link_grants).
        """
        ALTER TABLE accounts ADD COLUMN grant_id VARCHAR;
        """,
    ),
    (
        6,
        # Objects of a Search Returns page that cannot be stored as a return (no return_id, not an
        # object at all), kept as they came instead of being skipped: the page is committed with them,
        # so the watermark never passes an object that is not kept somewhere. One row per distinct
        # object and shop; a sync that reads it again counts it (times_seen) instead of adding a row.
        """
        CREATE SEQUENCE quarantined_returns_seq;
        CREATE TABLE quarantined_returns (
            id            BIGINT PRIMARY KEY DEFAULT nextval('quarantined_returns_seq'),
            shop_id       VARCHAR NOT NULL,
            reason        VARCHAR NOT NULL,   -- why it is not a return, in words ('no return_id', ...)
            update_time   BIGINT,             -- TikTok's update_time on it, when readable
            payload       VARCHAR NOT NULL,   -- the object exactly as received (canonical JSON text)
            first_seen_at TIMESTAMP NOT NULL,
            last_seen_at  TIMESTAMP NOT NULL,
            first_run_id  BIGINT,             -- the sync runs that met it first and last (NULL: outside a run)
            last_run_id   BIGINT,
            times_seen    INTEGER NOT NULL DEFAULT 1
        );
        """,
    ),
    (
        7,
        # Cancellations (Search Cancellations) live in `returns` beside the returns, one row each, so the
        # grid, filters, exports, deadlines and decisions serve both: `kind` says which ('return' for every
        # row from before), `return_id` holds the cancel_id (TikTok numbers both from one id space),
        # `return_type` the cancel_type, `marketplace_status` the cancel_status, verbatim. Cancellations are
        # read incrementally by their own update_time watermark.
        """
        ALTER TABLE returns ADD COLUMN kind VARCHAR DEFAULT 'return';
        ALTER TABLE sync_state ADD COLUMN cancellations_watermark BIGINT;
        """,
    ),
    (
        8,
        # Units sold (TikTok's Analytics API, 202509), the denominator of the return rate: one row per
        # shop, SKU or product, and shop-local day, as TikTok last reported it (it revises the latest
        # days, so a sync re-reads them and the row is replaced). Small, so kept for every day fetched.
        # sales_state says which days a shop's figures cover: rates are computed over those days only.
        """
        CREATE TABLE sku_sales (
            shop_id     VARCHAR NOT NULL,
            sku_id      VARCHAR NOT NULL,
            day         DATE NOT NULL,          -- the shop's calendar day (its registered time zone)
            product_id  VARCHAR,
            units_sold  INTEGER NOT NULL,
            sku_orders  INTEGER NOT NULL,
            gmv         DECIMAL(18,4),
            currency    VARCHAR,
            fetched_at  TIMESTAMP NOT NULL,
            PRIMARY KEY (shop_id, sku_id, day)
        );

        CREATE TABLE product_sales (
            shop_id     VARCHAR NOT NULL,
            product_id  VARCHAR NOT NULL,
            day         DATE NOT NULL,
            items_sold  INTEGER NOT NULL,
            orders      INTEGER NOT NULL,
            gmv         DECIMAL(18,4),
            currency    VARCHAR,
            fetched_at  TIMESTAMP NOT NULL,
            PRIMARY KEY (shop_id, product_id, day)
        );

        CREATE TABLE sales_state (
            shop_id     VARCHAR PRIMARY KEY,
            first_day   DATE NOT NULL,          -- the first day whose figures are stored
            last_day    DATE NOT NULL,          -- TikTok's latest_available_date when last fetched
            fetched_at  TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        9,
        # Decision rules (returns_core.rules): a rule is data, replayed on history (a backtest) before it
        # may act. Each change to a rule, and the kill switch, is kept in rule_history (append-only).
        # rule_decisions is the claim: one row per return that any rule decided, inserted before anything
        # is sent, so two syncs that finish at once act on a return once (its PRIMARY KEY is the claim).
        # A backtest keeps the returns it would have decided, so the grid opens on exactly those rows.
        """
        CREATE SEQUENCE decision_rules_seq;
        CREATE TABLE decision_rules (
            id             BIGINT PRIMARY KEY DEFAULT nextval('decision_rules_seq'),
            name           VARCHAR NOT NULL,
            conditions     VARCHAR NOT NULL,   -- JSON: rules.Conditions
            action         VARCHAR NOT NULL,   -- approve | approve_keep_item | reject | flag
            reject_reason  VARCHAR,            -- TikTok's reject reason name, for reject
            daily_cap      INTEGER NOT NULL,
            enabled        BOOLEAN NOT NULL DEFAULT false,
            enabled_modes  VARCHAR,            -- JSON {shop_id: "sandbox" | "live"} as the accounts were when enabled
            enabled_at     TIMESTAMP,
            enabled_by     VARCHAR,
            created_at     TIMESTAMP NOT NULL,
            created_by     VARCHAR NOT NULL,
            updated_at     TIMESTAMP NOT NULL,
            updated_by     VARCHAR NOT NULL,
            retired_at     TIMESTAMP           -- removed from the page; kept for its history and decisions
        );

        CREATE SEQUENCE rule_history_seq;
        CREATE TABLE rule_history (
            id          BIGINT PRIMARY KEY DEFAULT nextval('rule_history_seq'),
            rule_id     BIGINT,                -- NULL for the kill switch (all rules)
            happened_at TIMESTAMP NOT NULL,
            actor       VARCHAR NOT NULL,
            kind        VARCHAR NOT NULL,      -- created | edited | enabled | disabled | retired | kill_switch
            old_value   VARCHAR,               -- JSON of the rule (or the switch) before
            new_value   VARCHAR,               -- and after
            note        VARCHAR
        );

        CREATE TABLE rule_decisions (
            shop_id          VARCHAR NOT NULL,
            return_id        VARCHAR NOT NULL,
            rule_id          BIGINT NOT NULL,
            action           VARCHAR NOT NULL,  -- the rule's action
            decision         VARCHAR,           -- TikTok's decision sent (NULL for a flag)
            idempotency_key  VARCHAR,
            state            VARCHAR NOT NULL,  -- claimed | ok | failed | flagged
            result           VARCHAR,           -- what happened, in words
            claimed_at       TIMESTAMP NOT NULL,
            finished_at      TIMESTAMP,
            claimed_by       VARCHAR NOT NULL,  -- which run: 'cli' | 'app' | 'test', and its process
            PRIMARY KEY (shop_id, return_id)
        );

        CREATE SEQUENCE backtests_seq;
        CREATE TABLE backtests (
            id        BIGINT PRIMARY KEY DEFAULT nextval('backtests_seq'),
            rule_id   BIGINT,                  -- NULL for a draft never saved
            rule      VARCHAR NOT NULL,        -- JSON: the rule as replayed
            days      INTEGER NOT NULL,
            since     TIMESTAMP NOT NULL,
            until     TIMESTAMP NOT NULL,
            ran_at    TIMESTAMP NOT NULL,
            ran_by    VARCHAR NOT NULL
        );
        CREATE TABLE backtest_returns (
            backtest_id BIGINT NOT NULL,
            shop_id     VARCHAR NOT NULL,
            return_id   VARCHAR NOT NULL
        );
        """,
    ),
    (
        10,
        # One return, its line items and its history are read by its id (a link, the detail page,
        # the decision card). They are written in sync order, not by id, so zone maps cannot find
        # them, and DuckDB uses an index only for one column (not the (shop_id, return_id) key):
        # without these each read scans the table (0.4-0.5 s at 10M returns). Queries name the id
        # alone for DuckDB to use them (store/db.one_return_sql).
        """
        CREATE INDEX returns_by_id ON returns (return_id);
        CREATE INDEX return_line_items_by_return ON return_line_items (return_id);
        CREATE INDEX history_by_return ON history (return_id);
        """,
    ),
    (
        11,
        # "Waiting for you", the Actions column, alerts and rules ask whether TikTok waits for the
        # seller (domain.can_decide). Worked out in SQL for every row, that rule over three columns
        # scanned the whole table on every grid (0.3 s at 10M returns); a sync now stores its answer
        # (ingest.return_row) and this fills it in for the rows already stored, by the rule's SQL twin.
        f"""
        ALTER TABLE returns ADD COLUMN can_decide BOOLEAN;
        UPDATE returns SET can_decide = {domain.can_decide_sql("returns")};
        """,
    ),
    (
        12,
        # Reason Analytics at millions of returns: daily pre-aggregates (store/rollups.py), filled here
        # for the returns stored so far; every write keeps them current for the days it touches.
        """
        CREATE TABLE daily_returns (
            shop_id VARCHAR, kind VARCHAR, created_at TIMESTAMP, type VARCHAR, status VARCHAR,
            reason_code VARCHAR, reason_text VARCHAR, refund_currency VARCHAR,
            returns BIGINT NOT NULL, with_refund BIGINT NOT NULL, refund_total DECIMAL(38,4)
        );
        CREATE TABLE daily_skus (
            shop_id VARCHAR, kind VARCHAR, created_at TIMESTAMP, type VARCHAR, status VARCHAR,
            reason_code VARCHAR, reason_text VARCHAR, sku VARCHAR, product_name VARCHAR, refund_currency VARCHAR,
            returns BIGINT NOT NULL, units BIGINT NOT NULL, refund_total DECIMAL(38,4) NOT NULL
        );
        CREATE TABLE daily_products (
            shop_id VARCHAR, kind VARCHAR, created_at TIMESTAMP, type VARCHAR, status VARCHAR,
            reason_code VARCHAR, reason_text VARCHAR, product VARCHAR, skus VARCHAR[], refund_currency VARCHAR,
            returns BIGINT NOT NULL, refund_total DECIMAL(38,4) NOT NULL
        );
        """ + _FILL_ALL,
    ),
    (
        13,
        # A run reads returns and cancellations: how many of its rows were cancellations, so its counts
        # are told apart ("2,006 returns and 803 cancellations"). Runs from before count 0 (returns only).
        """
        ALTER TABLE sync_runs ADD COLUMN cancellations_count BIGINT DEFAULT 0;
        """,
    ),
]
