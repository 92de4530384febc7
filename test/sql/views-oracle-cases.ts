/** The view definitions the oracle test checks; each covers a supported construct. */
export const VIEWS: readonly { name: string; sql: string }[] = [
  { name: 'scan_all', sql: 'SELECT * FROM orders' },
  {
    name: 'project_expr',
    sql: 'SELECT id, amount * 2 AS twice, qty + 1 AS q1, qty / 3 AS third, qty % 4 AS m, -big AS nb FROM orders',
  },
  {
    name: 'filter_3vl',
    sql: "SELECT id FROM orders WHERE (amount > 100 OR qty < 5) AND NOT (status = 'cancelled')",
  },
  { name: 'null_tests', sql: 'SELECT id, amount IS NULL AS a, customer_id IS NOT NULL AS b FROM orders' },
  {
    name: 'case_coalesce',
    sql: "SELECT id, CASE WHEN amount > 500 THEN 'big' WHEN amount > 0 THEN 'small' ELSE 'neg' END AS size, COALESCE(qty, -1) AS q, NULLIF(status, 'new') AS s FROM orders",
  },
  {
    name: 'in_like',
    sql: "SELECT id, status FROM orders WHERE status IN ('paid', 'shipped') OR status LIKE 'ne%'",
  },
  {
    name: 'ilike_not_in',
    sql: "SELECT id, name FROM customers WHERE name ILIKE 'A%' OR region NOT IN ('north', 'south')",
  },
  {
    name: 'string_fns',
    sql: "SELECT id, lower(region) AS l, upper(name) AS u, length(name) AS n, substring(name from 2 for 2) AS s, substr(name, 2) AS s2, trim(name) AS t, rtrim(name) AS rt, ltrim(name, 'a') AS lt, concat(name, '-', id, vip) AS c, name || '!' AS bang, replace(name, 'n', 'N') AS r, left(name, 2) AS lf, right(name, -1) AS rg, position('n' IN name) AS p FROM customers",
  },
  {
    name: 'numeric_fns',
    sql: 'SELECT id, abs(amount) AS a, round(amount) AS r, round(amount, 1) AS r1, floor(amount) AS f, ceil(amount) AS c, amount / 3 AS d FROM orders',
  },
  {
    name: 'casts',
    sql: "SELECT id, amount::int AS ai, qty::numeric(10,3) AS qn, big::text AS bt, id::bigint + big AS s, CAST(qty AS text) || 'x' AS qt FROM orders",
  },
  {
    name: 'count_by_status',
    sql: 'SELECT status, count(*) AS n, count(amount) AS na FROM orders GROUP BY status',
  },
  {
    name: 'sum_avg',
    sql: 'SELECT status, sum(amount) AS s, avg(amount) AS a, sum(qty) AS sq, avg(qty) AS aq, sum(big) AS sb FROM orders GROUP BY status',
  },
  {
    name: 'min_max',
    sql: 'SELECT customer_id, min(amount) AS lo, max(amount) AS hi, min(ts) AS first, max(status) AS ms FROM orders GROUP BY customer_id',
  },
  {
    name: 'count_distinct',
    sql: 'SELECT customer_id, count(DISTINCT status) AS n, sum(DISTINCT qty) AS sq FROM orders GROUP BY customer_id',
  },
  {
    name: 'bool_aggs',
    sql: 'SELECT region, bool_and(vip) AS all_vip, bool_or(vip) AS any_vip FROM customers GROUP BY region',
  },
  {
    name: 'string_agg',
    sql: "SELECT region, string_agg(name, ',' ORDER BY name) AS names FROM customers GROUP BY region",
  },
  {
    name: 'global_agg',
    sql: 'SELECT count(*) AS n, sum(amount) AS s, max(id) AS m FROM orders',
  },
  {
    name: 'having',
    sql: 'SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id HAVING count(*) > 2 AND sum(amount) > 0',
  },
  { name: 'group_expr', sql: 'SELECT qty % 3 AS bucket, count(*) AS n FROM orders GROUP BY qty % 3' },
  {
    name: 'inner_join',
    sql: 'SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON o.customer_id = c.id',
  },
  {
    name: 'left_join',
    sql: 'SELECT o.id, c.region FROM orders o LEFT JOIN customers c ON o.customer_id = c.id',
  },
  {
    name: 'right_join',
    sql: 'SELECT o.id AS oid, c.id AS cid FROM orders o RIGHT JOIN customers c ON o.customer_id = c.id',
  },
  {
    name: 'full_join',
    sql: 'SELECT o.id AS oid, c.id AS cid, c.vip FROM orders o FULL JOIN customers c ON o.customer_id = c.id',
  },
  {
    name: 'join_using',
    sql: 'SELECT t.tag, o.status FROM tags t JOIN (SELECT id AS order_id, status FROM orders) o USING (order_id)',
  },
  {
    name: 'three_way_join',
    sql: 'SELECT c.region, t.tag, count(*) AS n FROM orders o JOIN customers c ON o.customer_id = c.id JOIN tags t ON t.order_id = o.id GROUP BY c.region, t.tag',
  },
  // Lookups by key joined to each other before the large table (plan-where.ts preJoinDimensions).
  {
    name: 'snowflake_star',
    sql: 'SELECT * FROM customers c, tags t, (SELECT id AS oid, customer_id, amount FROM orders) o WHERE t.order_id = o.oid AND o.customer_id = c.id',
  },
  {
    name: 'snowflake_unqualified_on',
    sql: 'SELECT c.region, t.tag, sum(amount) AS s, count(*) AS n FROM tags t JOIN orders o ON order_id = o.id JOIN customers c ON customer_id = c.id WHERE c.vip IS NOT TRUE GROUP BY c.region, t.tag',
  },
  {
    name: 'region_revenue',
    sql: "SELECT c.region, count(*) AS orders, sum(o.amount) AS revenue FROM orders o JOIN customers c ON o.customer_id = c.id WHERE o.status <> 'cancelled' GROUP BY c.region",
  },
  { name: 'distinct', sql: 'SELECT DISTINCT status, qty FROM orders' },
  { name: 'union_all', sql: 'SELECT region AS x FROM customers UNION ALL SELECT status FROM orders' },
  { name: 'union', sql: 'SELECT customer_id AS x FROM orders UNION SELECT id FROM customers' },
  {
    name: 'subquery_agg',
    sql: 'SELECT s.status, s.n * 2 AS n2 FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) s WHERE s.n > 1',
  },
  {
    name: 'top_n',
    sql: 'SELECT id, amount FROM orders ORDER BY amount DESC NULLS LAST, id LIMIT 5',
  },
  { name: 'top_n_offset', sql: 'SELECT id, status FROM orders ORDER BY id LIMIT 4 OFFSET 2' },
  {
    name: 'top_n_per_group',
    sql: 'SELECT * FROM (SELECT id, status, amount, row_number() OVER (PARTITION BY status ORDER BY amount DESC, id) AS rn FROM orders) s WHERE rn <= 2',
  },
  { name: 'order_ignored', sql: 'SELECT id, name FROM customers ORDER BY name' },
  {
    name: 'greatest_between',
    sql: "SELECT id, greatest(qty, 10) AS g, least(qty, 10) AS l, qty BETWEEN 5 AND 10 AS b, status IS DISTINCT FROM 'new' AS d FROM orders",
  },
  {
    name: 'date_trunc_group',
    sql: "SELECT date_trunc('month', ts) AS m, count(*) AS n, sum(amount) AS s FROM orders GROUP BY date_trunc('month', ts)",
  },
  {
    name: 'date_trunc_units',
    sql: "SELECT id, date_trunc('week', ts) AS w, date_trunc('day', tz) AS dz, date_trunc('quarter', d) AS q, date_trunc('hour', ts) AS h, date_trunc('year', tz) AS y, date_trunc('decade', d) AS dec FROM orders",
  },
  {
    name: 'extract_fields',
    sql: 'SELECT id, extract(year from ts) AS y, extract(dow from d) AS dow, extract(epoch from tz) AS e, extract(doy from d) AS doy, extract(epoch from dur) AS de, extract(hour from dur) AS dh, extract(second from tz) AS sec, extract(quarter from d) AS q, extract(week from ts) AS wk FROM orders',
  },
  {
    name: 'date_part',
    sql: "SELECT id, date_part('month', ts) AS m, date_part('day', d) AS dd, date_part('minute', tz) AS mi, date_part('day', dur) AS dud, date_part('hour', d) AS dh FROM orders",
  },
  {
    name: 'temporal_casts',
    sql: 'SELECT id, ts::date AS td, d::timestamp AS dt, d::timestamptz AS dtz, tz::timestamp AS tzt, tz::date AS tzd, ts::text AS tt, dur::text AS dut, CAST(ts AS timestamptz) AS ttz, d::text AS dtext FROM orders',
  },
  {
    name: 'temporal_literals',
    sql: "SELECT id, status, '2024-02-01'::date AS lit FROM orders WHERE ts >= '2024-02-01' AND (d < DATE '2023-07-01' OR dur > interval '1 day' OR tz < timestamptz '2024-01-15 12:00+00' OR ts::date = '2024-03-03')",
  },
  {
    name: 'temporal_aggs',
    sql: 'SELECT status, min(d) AS d0, max(tz) AS t1, max(dur) AS lm, min(ts) AS t0, count(DISTINCT d) AS nd FROM orders GROUP BY status',
  },
  { name: 'group_by_date', sql: 'SELECT d, count(*) AS n, max(ts) AS last FROM orders GROUP BY d' },
  {
    name: 'top_n_temporal',
    sql: 'SELECT id, tz, d FROM orders ORDER BY tz DESC NULLS LAST, id LIMIT 3',
  },
  {
    name: 'top_n_by_date',
    sql: 'SELECT * FROM (SELECT id, status, d, row_number() OVER (PARTITION BY status ORDER BY d, id) AS rn FROM orders) s WHERE rn <= 2',
  },
  // Comma-separated FROM, join predicates in WHERE, OR-factoring.
  {
    name: 'comma_join',
    sql: 'SELECT o.id, c.name, t.tag FROM orders o, customers c, tags t WHERE o.customer_id = c.id AND t.order_id = o.id AND c.region IS NOT NULL',
  },
  {
    name: 'comma_join_or_factored',
    sql: "SELECT o.id, c.id AS cid FROM orders o, customers c WHERE (o.customer_id = c.id AND o.status = 'paid' AND c.vip) OR (o.customer_id = c.id AND o.qty > 10 AND c.region = 'north')",
  },
  {
    name: 'cross_join_filtered',
    sql: 'SELECT c.id AS cid, t.tag FROM customers c, tags t WHERE t.order_id > c.id + 30',
  },
  // Outer joins with conditions beyond equalities.
  {
    name: 'left_join_kept_side_condition',
    sql: "SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON o.customer_id = c.id AND o.status <> 'new'",
  },
  {
    name: 'left_join_padded_side_condition',
    sql: "SELECT c.id, count(o.id) AS n FROM customers c LEFT JOIN orders o ON c.id = o.customer_id AND o.status NOT LIKE 'ca%' GROUP BY c.id",
  },
  {
    name: 'left_join_two_sided_condition',
    sql: 'SELECT o.id, c.id AS cid FROM orders o LEFT JOIN customers c ON o.customer_id = c.id AND o.qty > c.id % 7',
  },
  {
    name: 'full_join_two_sided_condition',
    sql: 'SELECT o.id, c.id AS cid FROM orders o FULL JOIN customers c ON o.customer_id = c.id AND o.qty < c.id',
  },
  {
    name: 'right_join_non_equi',
    sql: 'SELECT t.tag, c.id AS cid FROM tags t RIGHT JOIN customers c ON t.order_id < c.id',
  },
  // EXISTS / NOT EXISTS, correlated (with a residual), uncorrelated.
  {
    name: 'exists',
    sql: 'SELECT c.id, c.region FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.amount > 0)',
  },
  {
    name: 'not_exists',
    sql: 'SELECT c.id FROM customers c WHERE NOT EXISTS (SELECT * FROM orders o WHERE o.customer_id = c.id)',
  },
  {
    name: 'exists_residual',
    sql: 'SELECT o.id FROM orders o WHERE EXISTS (SELECT * FROM orders o2 WHERE o2.customer_id = o.customer_id AND o2.id <> o.id)',
  },
  {
    name: 'not_exists_residual',
    sql: 'SELECT o.id, o.qty FROM orders o WHERE NOT EXISTS (SELECT * FROM orders o2 WHERE o2.customer_id = o.customer_id AND o2.qty > o.qty)',
  },
  {
    name: 'exists_uncorrelated',
    sql: "SELECT id FROM customers WHERE EXISTS (SELECT 1 FROM tags WHERE tag = 'c' AND order_id > 35)",
  },
  // IN / NOT IN with NULLs on both sides (SQL's three-valued rules).
  {
    name: 'in_subquery',
    sql: 'SELECT id, customer_id FROM orders WHERE customer_id IN (SELECT order_id FROM tags)',
  },
  {
    name: 'not_in_nullable',
    sql: "SELECT id FROM orders WHERE customer_id NOT IN (SELECT order_id FROM tags WHERE tag = 'a')",
  },
  {
    name: 'not_in_correlated',
    sql: 'SELECT c.id FROM customers c WHERE c.id NOT IN (SELECT t.order_id FROM tags t WHERE t.tag = c.region)',
  },
  {
    name: 'in_marks',
    sql: "SELECT id, customer_id IN (SELECT order_id FROM tags) AS in_tags, customer_id NOT IN (SELECT order_id FROM tags WHERE tag <> 'b') AS not_in, EXISTS (SELECT 1 FROM tags t WHERE t.order_id = orders.id) AS tagged FROM orders",
  },
  {
    name: 'in_under_or',
    sql: "SELECT id FROM orders WHERE status = 'new' OR customer_id IN (SELECT id FROM customers WHERE vip)",
  },
  {
    name: 'in_grouped_subquery',
    sql: 'SELECT id FROM customers WHERE id IN (SELECT customer_id FROM orders GROUP BY customer_id HAVING count(*) > 2)',
  },
  // Scalar subqueries: correlated (count over no rows is 0), uncorrelated, in HAVING.
  {
    name: 'scalar_correlated',
    sql: 'SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n, (SELECT max(o.amount) FROM orders o WHERE o.customer_id = c.id) AS top FROM customers c',
  },
  {
    name: 'scalar_compare',
    sql: 'SELECT o.id FROM orders o WHERE o.amount > (SELECT avg(o2.amount) FROM orders o2 WHERE o2.status = o.status)',
  },
  {
    name: 'scalar_uncorrelated',
    sql: 'SELECT id, qty FROM orders WHERE qty >= (SELECT avg(qty) FROM orders) - 2',
  },
  {
    name: 'having_subquery',
    sql: 'SELECT customer_id, sum(amount) AS s FROM orders GROUP BY customer_id HAVING sum(amount) > (SELECT sum(amount) * 0.1 FROM orders)',
  },
  // WITH.
  {
    name: 'cte_shared',
    sql: 'WITH totals (cid, total) AS (SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id) SELECT cid, total FROM totals WHERE total = (SELECT max(total) FROM totals)',
  },
  {
    name: 'cte_chain',
    sql: "WITH paid AS (SELECT * FROM orders WHERE status = 'paid'), big AS (SELECT id, customer_id FROM paid WHERE amount > 100) SELECT b.id, c.region FROM big b JOIN customers c ON c.id = b.customer_id",
  },
  // Window functions (orders made unique where PostgreSQL's tie order is arbitrary).
  {
    name: 'window_ranks',
    sql: 'SELECT id, rank() OVER (PARTITION BY status ORDER BY qty) AS r, dense_rank() OVER (PARTITION BY status ORDER BY qty) AS dr, row_number() OVER (PARTITION BY status ORDER BY qty, id) AS rn FROM orders',
  },
  {
    name: 'window_lag_lead',
    sql: 'SELECT id, lag(amount) OVER (ORDER BY id) AS prev, lead(qty, 2, -1) OVER (PARTITION BY customer_id ORDER BY id) AS next2 FROM orders',
  },
  {
    name: 'window_running',
    sql: 'SELECT id, sum(amount) OVER (PARTITION BY customer_id ORDER BY qty) AS running, count(*) OVER (PARTITION BY customer_id ORDER BY qty) AS n, count(amount) OVER (PARTITION BY status) AS per_status, avg(qty) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ra FROM orders',
  },
  {
    name: 'window_over_groups',
    sql: 'SELECT status, count(*) AS n, rank() OVER (ORDER BY count(*) DESC) AS r FROM orders GROUP BY status',
  },
  // Date and interval arithmetic, interval literal forms.
  {
    name: 'date_arith',
    sql: "SELECT id, d + 7 AS week_later, d - 1 AS day_before, d - date '2023-06-01' AS days_since, d + interval '1' month AS next_month, ts - interval '90' day AS earlier, ts + interval '1-2' year to month AS later, tz + interval '3 4:05' day to minute AS tz2, dur + interval '2' hour AS dur2, dur * 2 AS dur_twice, ts - (d::timestamp) AS gap FROM orders WHERE d BETWEEN '1900-01-01' AND '3000-01-01'",
  },
  {
    name: 'date_window_filter',
    sql: "SELECT id FROM orders WHERE d >= date '2023-03-01' AND d < date '2023-03-01' + interval '3' month AND ts <= date '2024-03-31' - interval '10' day",
  },
  // character(n): compared without its padding, LIKE with it, cast to text without it.
  {
    name: 'bpchar',
    sql: "SELECT id, code = 'ab' AS is_ab, code LIKE 'ab%' AS like_ab, code || '|' AS piped, length(code) AS len, upper(code) AS up, code IN ('x', 'abc') AS in_list FROM customers",
  },
  { name: 'bpchar_group', sql: 'SELECT code, count(*) AS n, max(code) AS m FROM customers GROUP BY code' },
  // count(DISTINCT), ORDER BY … LIMIT … OFFSET over a join and aggregate.
  {
    name: 'top_n_of_aggregate',
    sql: 'SELECT c.region, count(DISTINCT o.status) AS statuses, sum(o.qty) AS q FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region ORDER BY q DESC NULLS LAST, c.region NULLS FIRST LIMIT 3 OFFSET 1',
  },
  // Sides holding one row per join key (a table's key, a GROUP BY's groups), stored by key and
  // read with a point read (dataflow/join.ts): inner and outer, one side or both, and a key
  // side reached through another such join.
  {
    name: 'join_unique_aggregate_sides',
    sql: 'SELECT c.id, c.name, s.n, s.total FROM customers c JOIN (SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer_id) s ON s.customer_id = c.id',
  },
  {
    name: 'full_join_unique_sides',
    sql: 'SELECT c.id AS cid, s.customer_id, c.region, s.n FROM customers c FULL JOIN (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) s ON s.customer_id = c.id',
  },
  {
    name: 'left_join_unique_right_through_join',
    sql: 'SELECT t.tag, o.status, c.region FROM tags t LEFT JOIN (orders o JOIN customers c ON o.customer_id = c.id) ON t.order_id = o.id',
  },
];
