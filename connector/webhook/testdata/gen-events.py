#!/usr/bin/env python3
"""Generates events.json: X-Appwrite-Webhook-Events headers as Appwrite servers send them.

The lists are produced by a port of Appwrite's Event::generateEvents (src/Appwrite/Event/
Event.php, 1.8/1.9 line): for a row event it expands the pattern into every wildcard variant,
22 strings per family. Servers that mirror the event into the other family (tables/rows and
collections/documents) append that family's list, minus the two strings both share
("databases.<db>", "databases.*"): 42 strings. The first element is always the fully qualified
original event.

Run: python3 testdata/gen-events.py   (writes testdata/events.json next to this script)
"""
import json
import os


def parse(pattern):
    parts = pattern.split('.')
    c = len(parts)
    typ, res = parts[0], parts[1] if c > 1 else False
    has_sub = c > 3 and parts[3].startswith('[')
    has_subsub = c > 5 and parts[5].startswith('[') and has_sub
    sub_t = sub_r = subsub_t = subsub_r = attr = False
    if has_sub:
        sub_t, sub_r = parts[2], parts[3]
    if has_subsub:
        subsub_t, subsub_r = parts[4], parts[5]
        if c == 8:
            attr = parts[7]
    if has_sub and not has_subsub and c == 6:
        attr = parts[5]
    if not has_sub and c == 4:
        attr = parts[3]
    if not has_sub and c > 2:
        action = parts[2]
    elif has_subsub:
        action = parts[6] if c > 6 else False
    elif has_sub and c > 4:
        action = parts[4]
    else:
        action = False
    return typ, res, sub_t, sub_r, subsub_t, subsub_r, action, attr


def str_replace(keys, values, s):
    """PHP str_replace with an array of search strings: applied one after the other."""
    for i, k in enumerate(keys):
        s = s.replace(k, values[i] if isinstance(values, list) else values)
    return s


def generate_events(pattern, params):
    keys, values = list(params.keys()), list(params.values())
    typ, res, sub_t, sub_r, subsub_t, subsub_r, action, attr = parse(pattern)
    patterns = []
    if action:
        if subsub_r:
            if attr:
                patterns.append('.'.join([typ, res, sub_t, sub_r, subsub_t, subsub_r, action, attr]))
            patterns.append('.'.join([typ, res, sub_t, sub_r, subsub_t, subsub_r, action]))
            patterns.append('.'.join([typ, res, sub_t, sub_r, subsub_t, subsub_r]))
        elif sub_r:
            if attr:
                patterns.append('.'.join([typ, res, sub_t, sub_r, action, attr]))
            patterns.append('.'.join([typ, res, sub_t, sub_r, action]))
            patterns.append('.'.join([typ, res, sub_t, sub_r]))
        else:
            patterns.append('.'.join([typ, res, action]))
        if attr:
            patterns.append('.'.join([typ, res, action, attr]))
    if subsub_r:
        patterns.append('.'.join([typ, res, sub_t, sub_r, subsub_t, subsub_r]))
    if sub_r:
        patterns.append('.'.join([typ, res, sub_t, sub_r]))
    patterns.append('.'.join([typ, res]))
    patterns = list(dict.fromkeys(patterns))

    events = []
    for p in patterns:
        events.append(str_replace(keys, values, p))
        events.append(str_replace(keys, '*', p))
        for key in keys:
            for cur in keys:
                if subsub_r:
                    for sub_cur in keys:
                        if sub_cur == cur or sub_cur == key:
                            continue
                        f1 = [k for k in keys if k == sub_cur]
                        events.append(str_replace(keys, values, str_replace(f1, '*', p)))
                        f2 = [k for k in keys if k == cur]
                        events.append(str_replace(keys, values, str_replace(f2, '*', str_replace(f1, '*', p))))
                        events.append(str_replace(keys, values, str_replace(f2, '*', p)))
                else:
                    if cur == key:
                        continue
                    f = [k for k in keys if k == cur]
                    events.append(str_replace(keys, values, str_replace(f, '*', p)))
    events = [e.replace('[', '').replace(']', '') for e in events]
    return list(dict.fromkeys(events))


FAMILIES = {
    'tables': ('databases.[databaseId].tables.[tableId].rows.[rowId].{}', ('databaseId', 'tableId', 'rowId')),
    'documents': ('databases.[databaseId].collections.[collectionId].documents.[documentId].{}',
                  ('databaseId', 'collectionId', 'documentId')),
    'tablesdb': ('tablesdb.[databaseId].tables.[tableId].rows.[rowId].{}', ('databaseId', 'tableId', 'rowId')),
}


def family_events(family, action, db, table, row):
    pattern, names = FAMILIES[family]
    return generate_events(pattern.format(action), dict(zip(names, (db, table, row))))


def header(families, action, db, table, row):
    out = []
    for f in families:
        for e in family_events(f, action, db, table, row):
            if e not in out:
                out.append(e)
    return out


cases = []


def add(name, version, families, action, db='main', table='posts', row='row1'):
    events = header(families, action, db, table, row)
    cases.append({
        'name': name, 'version': version, 'action': action,
        'database': db, 'table': table, 'row': row,
        'count': len(events), 'header': ','.join(events),
    })


for action in ('create', 'update', 'upsert', 'delete'):
    # 1.8: TablesDB writes use tables/rows, create and bulk use collections/documents; some
    # paths send one family (22), others both (42).
    add(f'1.8 tables {action} (22)', '1.8', ['tables'], action)
    add(f'1.8 documents {action} (22)', '1.8', ['documents'], action)
    add(f'1.8 tables {action} mirrored (42)', '1.8', ['tables', 'documents'], action)
    # 1.9.5 mirrors both families on every row event.
    add(f'1.9.5 tables {action} (42)', '1.9.5', ['tables', 'documents'], action)
    add(f'1.9.5 documents {action} (42)', '1.9.5', ['documents', 'tables'], action)
    add(f'tablesdb {action} (22)', 'newer', ['tablesdb'], action)
add('dotted ids, tables update (42)', '1.9.5', ['tables', 'documents'], 'update',
    db='shop.eu', table='orders.v2', row='ord.2026.001')
add('dotted ids, documents create (42)', '1.9.5', ['documents', 'tables'], 'create',
    db='shop.eu', table='orders.v2', row='ord.2026.001')
add('dotted ids, tablesdb delete (22)', 'newer', ['tablesdb'], 'delete',
    db='shop.eu', table='orders.v2', row='ord.2026.001')
add('ids that look like keywords (42)', '1.9.5', ['tables', 'documents'], 'upsert',
    db='tables', table='rows', row='update.delete')

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, 'events.json'), 'w') as f:
    json.dump(cases, f, indent=1)
    f.write('\n')
