-- 8 -> 9: the order list seeks for every filter combination (issue 15).
-- Each combination of editor, advertiser and status has an index that
-- leads with its columns and ends with seq, the list's cursor and order,
-- so that a page reads its rows and no others (O(page), not O(rows the
-- editor holds)). editor alone and advertiser alone use step 3's indexes.
CREATE INDEX orders_by_status ON orders (status, seq);
CREATE INDEX orders_by_editor_status ON orders (editor_id, status, seq);
CREATE INDEX orders_by_advertiser_status ON orders (advertiser_id, status, seq);
CREATE INDEX orders_by_editor_advertiser
  ON orders (editor_id, advertiser_id, seq);
CREATE INDEX orders_by_editor_advertiser_status
  ON orders (editor_id, advertiser_id, status, seq);
