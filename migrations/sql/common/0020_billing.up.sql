-- Billing: orders and subscription payments from the payment providers
-- (Stripe, Creem), the provider customer of each user, the processed
-- webhook events, and the credits ledger. Amounts are whole cents; credits
-- are whole numbers. No card number or payment credential is ever stored:
-- the providers keep those, and only their object ids are kept here.

-- billing_customers links a user to their customer record at a provider.
CREATE TABLE billing_customers (
    user_id     TEXT        NOT NULL,
    provider    TEXT        NOT NULL,
    customer_id TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, provider)
);

CREATE INDEX billing_customers_customer_idx ON billing_customers (provider, customer_id);

-- billing_orders holds one row per checkout: what was bought, for how much,
-- and how its payment, refund and cancellation stand.
CREATE TABLE billing_orders (
    id                  TEXT        NOT NULL PRIMARY KEY,
    user_id             TEXT        NOT NULL,
    provider            TEXT        NOT NULL,
    product_id          TEXT        NOT NULL,
    kind                TEXT        NOT NULL,
    amount_cents        BIGINT      NOT NULL,
    currency            TEXT        NOT NULL,
    credits             BIGINT      NOT NULL,
    status              TEXT        NOT NULL,
    checkout_session_id TEXT        NOT NULL,
    payment_id          TEXT        NOT NULL,
    subscription_id     TEXT        NOT NULL,
    refunded_cents      BIGINT      NOT NULL,
    refund_status       TEXT        NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE INDEX billing_orders_user_idx ON billing_orders (user_id, created_at);
CREATE INDEX billing_orders_payment_idx ON billing_orders (provider, payment_id);

-- billing_invoices holds one row per paid subscription period (a Stripe
-- invoice or a Creem subscription transaction), each granting credits.
CREATE TABLE billing_invoices (
    id              TEXT        NOT NULL PRIMARY KEY,
    user_id         TEXT        NOT NULL,
    provider        TEXT        NOT NULL,
    invoice_id      TEXT        NOT NULL,
    subscription_id TEXT        NOT NULL,
    product_id      TEXT        NOT NULL,
    amount_cents    BIGINT      NOT NULL,
    currency        TEXT        NOT NULL,
    credits         BIGINT      NOT NULL,
    status          TEXT        NOT NULL,
    payment_id      TEXT        NOT NULL,
    period_start    TIMESTAMPTZ,
    period_end      TIMESTAMPTZ,
    refunded_cents  BIGINT      NOT NULL,
    refund_status   TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX billing_invoices_provider_invoice_idx ON billing_invoices (provider, invoice_id);
CREATE INDEX billing_invoices_user_idx ON billing_invoices (user_id);

-- billing_subscriptions holds the latest known state of each subscription.
-- event_created is the provider's time of the event that set that state,
-- so an older event delivered late never overwrites a newer one.
CREATE TABLE billing_subscriptions (
    id                   TEXT        NOT NULL PRIMARY KEY,
    user_id              TEXT        NOT NULL,
    provider             TEXT        NOT NULL,
    subscription_id      TEXT        NOT NULL,
    product_id           TEXT        NOT NULL,
    status               TEXT        NOT NULL,
    current_period_start TIMESTAMPTZ,
    current_period_end   TIMESTAMPTZ,
    cancel_at_period_end BOOLEAN     NOT NULL,
    canceled_at          TIMESTAMPTZ,
    event_created        BIGINT      NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);

CREATE INDEX billing_subscriptions_user_idx ON billing_subscriptions (user_id);

-- billing_events records each provider webhook event processed, so a
-- replayed delivery is acknowledged and ignored.
CREATE TABLE billing_events (
    provider     TEXT        NOT NULL,
    event_id     TEXT        NOT NULL,
    event_type   TEXT        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, event_id)
);

-- credit_balances holds each user's spendable credits. It is the row a
-- ledger transaction locks; the ledger below is the history that explains
-- it.
CREATE TABLE credit_balances (
    user_id    TEXT        NOT NULL PRIMARY KEY,
    balance    BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- credit_ledger is append-only: every change of a balance, with the signed
-- amount it applied. idem_key makes each operation happen once however
-- often it is retried.
CREATE TABLE credit_ledger (
    id             TEXT        NOT NULL PRIMARY KEY,
    user_id        TEXT        NOT NULL,
    kind           TEXT        NOT NULL,
    amount         BIGINT      NOT NULL,
    shortfall      BIGINT      NOT NULL,
    reason         TEXT        NOT NULL,
    ref            TEXT        NOT NULL,
    reservation_id TEXT        NOT NULL,
    idem_key       TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX credit_ledger_idem_idx ON credit_ledger (idem_key);
CREATE INDEX credit_ledger_user_idx ON credit_ledger (user_id, created_at);
CREATE INDEX credit_ledger_ref_idx ON credit_ledger (ref);

-- credit_reservations holds credits set aside for work in progress until
-- they are committed (spent) or released (given back).
CREATE TABLE credit_reservations (
    id         TEXT        NOT NULL PRIMARY KEY,
    user_id    TEXT        NOT NULL,
    amount     BIGINT      NOT NULL,
    ref        TEXT        NOT NULL,
    status     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX credit_reservations_ref_idx ON credit_reservations (user_id, ref);
