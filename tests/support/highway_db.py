"""The highway service-area business of issue #13, as real tables with rows (for integration tests and
`make quality`).

Seven tables share the prefix `bss_`, every one carries create_ts/created_by/update_ts/updated_by/
delete_ts/deleted_by, no foreign key is declared (`service_area_id`, `company_id`, `section_route_id`
link them by name only), ids are varchar(32) as in the system this imitates, and only some tables have
(Chinese) comments. Some rows are soft-deleted (`delete_ts` set).

`HIGHWAY_SQL` creates and fills the tables in the current schema of a throwaway database;
`HIGHWAY_TABLES` is the table list a task names. (tests/support/highway_catalog.py is the smaller
catalog-only form used by unit tests.)
"""

from __future__ import annotations

_AUDIT = """
    create_ts timestamp(3) without time zone,
    created_by varchar(50),
    update_ts timestamp(3) without time zone,
    updated_by varchar(50),
    delete_ts timestamp(3) without time zone,
    deleted_by varchar(50)"""

_AUDIT_VALUES = (
    "now() - interval '400 days', 'admin', now() - (g % 30) * interval '1 day', 'etl_job', "
    "CASE WHEN g % 23 = 0 THEN now() - interval '3 days' END, CASE WHEN g % 23 = 0 THEN 'admin' END"
)
_AUDIT_COLUMNS = "create_ts, created_by, update_ts, updated_by, delete_ts, deleted_by"

HIGHWAY_TABLES = [
    "bss_company",
    "bss_section_route",
    "bss_service_area",
    "bss_section_route_area_link",
    "bss_service_area_mapper",
    "bss_business_day_data",
    "bss_car_day_count",
]

HIGHWAY_SQL = f"""
CREATE TABLE bss_company (
    id varchar(32) PRIMARY KEY,
    company_name varchar(255),
    company_no varchar(255),{_AUDIT}
);
CREATE TABLE bss_section_route (
    id varchar(32) PRIMARY KEY,
    section_name varchar(255),
    route_name varchar(255),
    code varchar(255),{_AUDIT}
);
CREATE TABLE bss_service_area (
    id varchar(32) PRIMARY KEY,
    service_area_name varchar(255),
    service_area_no varchar(255),
    company_id varchar(32),
    service_position varchar(255),
    service_area_type varchar(50),
    service_state varchar(50),{_AUDIT}
);
CREATE TABLE bss_section_route_area_link (
    section_route_id varchar(32) NOT NULL,
    service_area_id varchar(32) NOT NULL,
    PRIMARY KEY (section_route_id, service_area_id),{_AUDIT}
);
CREATE TABLE bss_service_area_mapper (
    id varchar(32) PRIMARY KEY,
    service_name varchar(255),
    service_no varchar(255),
    service_area_id varchar(32),
    source_system_type varchar(50),
    source_type integer,{_AUDIT}
);
CREATE TABLE bss_business_day_data (
    id varchar(32) PRIMARY KEY,
    oper_date date,
    service_no varchar(255),
    service_name varchar(255),
    branch_no varchar(255),
    branch_name varchar(255),
    wx numeric(19,4),
    wx_order integer,
    zfb numeric(19,4),
    zf_order integer,
    rmb numeric(19,4),
    rmb_order integer,
    xs numeric(19,4),
    xs_order integer,
    jd numeric(19,4),
    jd_order integer,
    order_sum integer,
    pay_sum numeric(19,4),
    source_type integer,
    service_area_id varchar(32),{_AUDIT}
);
CREATE TABLE bss_car_day_count (
    id varchar(32) PRIMARY KEY,
    count_date date,
    customer_count bigint,
    car_type varchar(100),
    service_area_id varchar(32),{_AUDIT}
);

COMMENT ON TABLE bss_service_area IS '服务区';
COMMENT ON COLUMN bss_service_area.service_area_name IS '服务区名称';
COMMENT ON COLUMN bss_service_area.service_area_no IS '服务区编码';
COMMENT ON COLUMN bss_service_area.company_id IS '所属公司';
COMMENT ON COLUMN bss_service_area.service_position IS '经纬度';
COMMENT ON COLUMN bss_service_area.service_area_type IS '服务区类型';
COMMENT ON COLUMN bss_service_area.service_state IS '服务区状态';
COMMENT ON TABLE bss_business_day_data IS '服务区档口每日营业数据';
COMMENT ON COLUMN bss_business_day_data.oper_date IS '统计日期';
COMMENT ON COLUMN bss_business_day_data.service_no IS '服务区编码';
COMMENT ON COLUMN bss_business_day_data.service_name IS '服务区名称';
COMMENT ON COLUMN bss_business_day_data.branch_no IS '档口编码';
COMMENT ON COLUMN bss_business_day_data.branch_name IS '档口名称';
COMMENT ON COLUMN bss_business_day_data.wx IS '微信支付金额';
COMMENT ON COLUMN bss_business_day_data.wx_order IS '微信订单数';
COMMENT ON COLUMN bss_business_day_data.zfb IS '支付宝支付金额';
COMMENT ON COLUMN bss_business_day_data.zf_order IS '支付宝订单数';
COMMENT ON COLUMN bss_business_day_data.rmb IS '现金支付金额';
COMMENT ON COLUMN bss_business_day_data.rmb_order IS '现金订单数';
COMMENT ON COLUMN bss_business_day_data.xs IS '行吧支付金额';
COMMENT ON COLUMN bss_business_day_data.xs_order IS '行吧订单数';
COMMENT ON COLUMN bss_business_day_data.jd IS '金豆支付金额';
COMMENT ON COLUMN bss_business_day_data.jd_order IS '金豆订单数';
COMMENT ON COLUMN bss_business_day_data.order_sum IS '订单总数';
COMMENT ON COLUMN bss_business_day_data.pay_sum IS '支付总金额';
COMMENT ON COLUMN bss_business_day_data.source_type IS '数据来源类型';

INSERT INTO bss_company (id, company_name, company_no, {_AUDIT_COLUMNS})
SELECT 'c' || g, (ARRAY['运营管理公司', '交投服务公司', '路桥实业公司', '高速发展公司'])[g] || g, 'H' || g,
       {_AUDIT_VALUES}
FROM generate_series(1, 4) g;
INSERT INTO bss_section_route (id, section_name, route_name, code, {_AUDIT_COLUMNS})
SELECT 'r' || g, '路段' || g, (ARRAY['昌九线', '沪昆线', '济广线', '大广线', '福银线'])[g], 'G' || (60 + g),
       {_AUDIT_VALUES}
FROM generate_series(1, 5) g;
INSERT INTO bss_service_area
    (id, service_area_name, service_area_no, company_id, service_position, service_area_type, service_state,
     {_AUDIT_COLUMNS})
SELECT 's' || g, '服务区' || g, '1' || lpad(g::text, 4, '0'), 'c' || (1 + g % 4), '115.8,28.6',
       (ARRAY['信息化服务区', '智能化服务区'])[1 + g % 2], (ARRAY['开放', '关闭', '上传数据'])[1 + g % 3],
       {_AUDIT_VALUES}
FROM generate_series(1, 24) g;
INSERT INTO bss_section_route_area_link (section_route_id, service_area_id, {_AUDIT_COLUMNS})
SELECT 'r' || (1 + g % 5), 's' || g, {_AUDIT_VALUES} FROM generate_series(1, 24) g;
INSERT INTO bss_service_area_mapper
    (id, service_name, service_no, service_area_id, source_system_type, source_type, {_AUDIT_COLUMNS})
SELECT 'm' || g, '服务区' || g, '1' || lpad(g::text, 4, '0'), 's' || g,
       (ARRAY['驿美', '驿购'])[1 + g % 2], 1 + g % 3, {_AUDIT_VALUES}
FROM generate_series(1, 24) g;
INSERT INTO bss_business_day_data
    (id, oper_date, service_no, service_name, branch_no, branch_name, wx, wx_order, zfb, zf_order, rmb,
     rmb_order, xs, xs_order, jd, jd_order, order_sum, pay_sum, source_type, service_area_id,
     {_AUDIT_COLUMNS})
SELECT 'b' || g, current_date - (g % 90), '1' || lpad((1 + g % 24)::text, 4, '0'), '服务区' || (1 + g % 24),
       'br' || (g % 7), (ARRAY['餐饮', '便利店', '加油站', '充电站', '特产店', '咖啡', '汽修'])[1 + g % 7],
       (g % 97) * 13.5, g % 40, (g % 89) * 11.25, g % 31, (g % 13) * 5, g % 5, g % 7, g % 3, g % 5, g % 2,
       g % 40 + g % 31 + g % 5 + g % 3 + g % 2,
       (g % 97) * 13.5 + (g % 89) * 11.25 + (g % 13) * 5 + g % 7 + g % 5, 1 + g % 2, 's' || (1 + g % 24),
       {_AUDIT_VALUES}
FROM generate_series(1, 2000) g;
INSERT INTO bss_car_day_count (id, count_date, customer_count, car_type, service_area_id, {_AUDIT_COLUMNS})
SELECT 'k' || g, current_date - (g % 90), 50 + (g * 37) % 900,
       (ARRAY['客车', '货车', '过境', '危化品', '城际'])[1 + g % 5], 's' || (1 + g % 24), {_AUDIT_VALUES}
FROM generate_series(1, 1500) g;
ANALYZE;
"""
