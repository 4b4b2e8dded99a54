-- A schema the existing-database scenario did not create: what a real application
-- might have. Loaded into the throwaway cluster before the choreography starts.
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (
    id serial PRIMARY KEY,
    sku varchar(32) NOT NULL UNIQUE,
    price numeric(10, 2) NOT NULL CHECK (price >= 0),
    stock integer NOT NULL DEFAULT 0
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    placed_at timestamptz NOT NULL DEFAULT now(),
    total numeric(12, 2) NOT NULL DEFAULT 0
);
CREATE INDEX orders_by_customer ON orders (customer_id, placed_at DESC);
CREATE TABLE order_lines (
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line integer NOT NULL,
    product_id integer NOT NULL REFERENCES products (id),
    quantity integer NOT NULL,
    PRIMARY KEY (order_id, line)
);
CREATE TABLE events (
    id bigint NOT NULL,
    at date NOT NULL,
    payload jsonb,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO customers (email, name) SELECT 'c' || g || '@example.com', 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO products (sku, price, stock) SELECT 'sku-' || g, g * 1.5, g FROM generate_series(1, 100) g;
INSERT INTO orders (customer_id, total) SELECT 1 + g % 200, g FROM generate_series(1, 500) g;
INSERT INTO order_lines SELECT o, 1, 1 + o % 100, 1 + o % 5 FROM generate_series(1, 500) o;
