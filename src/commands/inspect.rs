//! `stripe-sync inspect`: the user -> customer -> subscription mapping.

use crate::Status;
use crate::cli::{GlobalArgs, InspectArgs};
use crate::output::{self, Printer};
use crate::store::{self, Filter, Store};

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
    output::inspect::warn_duplicate_customers(&rows, printer);

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
        printer.out(&output::inspect::csv(&rows))?;
    } else if rows.is_empty() && filtered {
        printer.info("no customer matches the filter");
    } else {
        printer.out(&output::inspect::table(&rows, printer))?;
    }
    Ok(Status::from_problems(rows.is_empty() && filtered))
}
