DROP TABLE credit_reservations;
DROP TABLE credit_ledger;
DROP TABLE credit_balances;
DROP TABLE billing_events;
DROP TABLE billing_subscriptions;
DROP TABLE billing_invoices;
DROP TABLE billing_orders;
DROP TABLE billing_customers;
