//! `stripe-sync inspect`: the user -> customer -> subscription mapping.

use std::collections::BTreeMap;

use crate::Status;
use crate::cli::{GlobalArgs, InspectArgs};
use crate::output::{self, Printer};
use crate::store::{self, Filter, MappingRow, Store};

pub fn run(args: &InspectArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    if args.csv && printer.json {
        return Err(crate::usage(
            "--csv and --json exclude each other: pick one output format",
        ));
    }
    let db = store::db_path(global.db.as_deref());
    let Some(store) = Store::open_read_only(&db)? else {
        return Err(anyhow::anyhow!(
            "no store at {}: build one with `stripe-sync replay <events>` or `stripe-sync resync`, or pass --db",
            db.display()
        ));
    };
    let filter = Filter {
        users: args.users.clone(),
        customers: args.customers.clone(),
        statuses: args
            .status
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        unmapped: args.unmapped,
    };
    let filtered = !(filter.users.is_empty()
        && filter.customers.is_empty()
        && filter.statuses.is_empty()
        && !filter.unmapped);
    let rows = store.mapping(&filter)?;
    warn_duplicate_customers(&rows, printer);

    // No rows and no filter: the store is merely empty, which is not a
    // problem found (status 0); only a filter that matches nothing is.
    let empty_store = rows.is_empty() && !filtered;
    if empty_store {
        printer.info(&format!(
            "the store {} holds no customers yet: run `stripe-sync replay fixtures/` or `stripe-sync resync --all`",
            db.display()
        ));
    }
    if printer.json {
        printer.out_json(&rows)?;
    } else if args.csv {
        printer.out(&csv(&rows))?;
    } else if rows.is_empty() && filtered {
        printer.info("no customer matches the filter");
    } else {
        printer.out(&table(&rows))?;
    }
    Ok(Status::from_problems(rows.is_empty() && filtered))
}

/// The pattern's known race: two customers created for one user.
fn warn_duplicate_customers(rows: &[MappingRow], printer: &Printer) {
    let mut by_user: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in rows {
        if let Some(u) = &r.user_id {
            by_user.entry(u).or_default().push(&r.customer_id);
        }
    }
    for (user, customers) in by_user.into_iter().filter(|(_, c)| c.len() > 1) {
        printer.warn(&format!(
            "user {} maps to {} customers ({}): duplicate customers, the checkout race of the pattern; the app syncs only one",
            output::escape_text(user),
            customers.len(),
            customers.join(", ")
        ));
    }
}

pub fn date(ts: Option<i64>) -> String {
    ts.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|d| format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
        .unwrap_or_else(|| "-".into())
}

pub fn card(r: &MappingRow) -> String {
    match &r.payment_method {
        Some(c) => format!(
            "{} •••• {}",
            c.brand.as_deref().unwrap_or("card"),
            c.last4.as_deref().unwrap_or("????")
        ),
        None => "-".into(),
    }
}

fn table(rows: &[MappingRow]) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record([
        "USER", "CUSTOMER", "EMAIL", "STATUS", "PRICE", "PERIOD", "CANCELS", "CARD", "SOURCE",
    ]);
    for r in rows {
        let esc = |s: &Option<String>| {
            s.as_deref()
                .map(|v| output::escape_text(v).into_owned())
                .unwrap_or_else(|| "-".into())
        };
        // The store reports a deleted customer's status as `deleted`; say it once.
        let status = if r.deleted && r.status != "deleted" {
            format!("{} (deleted)", r.status)
        } else {
            r.status.clone()
        };
        let period = if r.current_period_start.is_some() || r.current_period_end.is_some() {
            format!(
                "{} → {}",
                date(r.current_period_start),
                date(r.current_period_end)
            )
        } else {
            "-".into()
        };
        b.push_record([
            esc(&r.user_id),
            r.customer_id.clone(),
            esc(&r.email),
            status,
            esc(&r.price_id),
            period,
            if r.cancel_at_period_end {
                "at period end".into()
            } else {
                "-".into()
            },
            output::escape_text(&card(r)).into_owned(),
            r.source.clone(),
        ]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::blank());
    format!("{t}\n")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(rows: &[MappingRow]) -> String {
    let mut out = String::from(
        "user_id,customer_id,email,subscription_id,status,price_id,current_period_start,current_period_end,cancel_at_period_end,card_brand,card_last4,synced_at,source\n",
    );
    for r in rows {
        let opt = |s: &Option<String>| s.as_deref().map(csv_field).unwrap_or_default();
        let num = |n: Option<i64>| n.map(|v| v.to_string()).unwrap_or_default();
        let (brand, last4) = match &r.payment_method {
            Some(c) => (opt(&c.brand), opt(&c.last4)),
            None => (String::new(), String::new()),
        };
        out.push_str(
            &[
                opt(&r.user_id),
                csv_field(&r.customer_id),
                opt(&r.email),
                opt(&r.subscription_id),
                csv_field(&r.status),
                opt(&r.price_id),
                num(r.current_period_start),
                num(r.current_period_end),
                r.cancel_at_period_end.to_string(),
                brand,
                last4,
                csv_field(&r.synced_at),
                csv_field(&r.source),
            ]
            .join(","),
        );
        out.push('\n');
    }
    out
}
