-- 14 -> 15: fewer pages written an order (issue 15). The lists by
-- editor, by advertiser and by both, with no status, had indexes of their
-- own (steps 3 and 9): each a leaf page more that every new order dirties
-- (the last leaf of its prefix), about 38 of the 96 pages a group commit
-- of 16 orders wrote. Those lists now merge, in seq order, the lists of
-- the three statuses, each seeking the index of its filter and status
-- (store_sqlite_orders.c, ORDER_LIST_MERGE): still a page's rows and one
-- more of each status. Foreign-key checks on advertisers and editors
-- still find their orders by the status indexes, which lead with them.
DROP INDEX IF EXISTS orders_by_editor;
DROP INDEX IF EXISTS orders_by_advertiser;
DROP INDEX IF EXISTS orders_by_editor_advertiser;
