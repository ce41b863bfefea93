-- The catalogue behind GET /products/:id. A product page needs four queries (product + category, review summary,
-- latest reviews, related products): what a cache hit saves.
CREATE TABLE categories (
  id    integer PRIMARY KEY,
  slug  text NOT NULL UNIQUE,
  name  text NOT NULL
);

CREATE TABLE products (
  id           integer PRIMARY KEY,
  sku          text NOT NULL UNIQUE,
  name         text NOT NULL,
  description  text NOT NULL,
  price_cents  integer NOT NULL CHECK (price_cents >= 0),
  stock        integer NOT NULL DEFAULT 0 CHECK (stock >= 0),
  category_id  integer NOT NULL REFERENCES categories (id),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_category ON products (category_id, id);

CREATE TABLE reviews (
  id          integer PRIMARY KEY,
  product_id  integer NOT NULL REFERENCES products (id),
  rating      integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
  author      text NOT NULL,
  body        text NOT NULL,
  created_at  timestamptz NOT NULL
);
CREATE INDEX reviews_product ON reviews (product_id, created_at DESC);

-- Page views, as an analytics export would deliver them; the trends batch ranks products from these.
CREATE TABLE product_views (
  product_id  integer NOT NULL REFERENCES products (id),
  viewed_at   timestamptz NOT NULL
);
CREATE INDEX product_views_time ON product_views (viewed_at);

-- Written only by the trends batch (delete + insert in one transaction), read by GET /trends.
CREATE TABLE trending_products (
  rank         integer PRIMARY KEY,
  product_id   integer NOT NULL REFERENCES products (id),
  views        integer NOT NULL,
  score        double precision NOT NULL,
  computed_at  timestamptz NOT NULL
);

-- Written only by the news worker; dedupe_key is the canonical URL, so one story from two feeds is one row.
CREATE TABLE articles (
  id            serial PRIMARY KEY,
  dedupe_key    text NOT NULL UNIQUE,
  title         text NOT NULL,
  summary       text NOT NULL,
  url           text NOT NULL,
  image_url     text,
  category      text NOT NULL,
  source        text NOT NULL,
  published_at  timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX articles_feed ON articles (published_at DESC, id DESC);
CREATE INDEX articles_category_feed ON articles (category, published_at DESC, id DESC);
