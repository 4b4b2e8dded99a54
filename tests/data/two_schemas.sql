-- Two schemas for the existing-database scenario: `public` and `sales`, with a
-- foreign key and a partitioned table across and within them.
CREATE TABLE customers (id int PRIMARY KEY, name text);
CREATE TABLE regions (id int PRIMARY KEY, label text);
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer int REFERENCES customers (id), amount numeric);
CREATE TABLE sales.items (id int PRIMARY KEY, label text, price double precision);
CREATE TABLE sales.notes (id int, body text);
CREATE TABLE sales.events (id bigint NOT NULL, at bigint NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE sales.events_1 PARTITION OF sales.events FOR VALUES FROM (0) TO (1000);
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20) g;
INSERT INTO sales.items SELECT g, 'i' || g, g FROM generate_series(1, 20) g;
