-- Write strategies (docs/write-strategies.md). The live view count of each product page, flushed from a write-behind
-- counter every N views: one UPDATE per batch, applied once per batch id.
ALTER TABLE products ADD COLUMN view_count bigint NOT NULL DEFAULT 0;

-- The batch ids already applied: a flush retried under the same id (after a crash or a lost COMMIT reply) is a no-op.
CREATE TABLE counter_batches (
  batch_id    text PRIMARY KEY,
  applied_at  timestamptz NOT NULL DEFAULT now()
);

-- The order log, written behind through a durable queue: one row per order key, inserted once.
CREATE TABLE orders (
  order_key   text PRIMARY KEY,
  product_id  integer NOT NULL REFERENCES products (id),
  quantity    integer NOT NULL CHECK (quantity > 0),
  ordered_at  timestamptz NOT NULL,
  written_at  timestamptz NOT NULL DEFAULT now()
);
