//! `stripe-sync inspect`: the user -> customer -> subscription mapping.

use crate::Status;
use crate::cli::{GlobalArgs, InspectArgs};
use crate::output::inspect::{CsvRows, JsonRows, RowSink, TableRows};
use crate::output::{self, Printer};
use crate::store::{DuplicateFinder, Filter, Store};

pub fn run(args: &InspectArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    if args.csv && printer.json {
        return Err(crate::usage(
            "--csv and --json exclude each other: pick one output format",
        ));
    }
    let cfg = crate::config::Config::load(global.config.as_deref())?;
    let db = super::store_location(global, &cfg);
    let Some(store) = Store::open_read_only(&db)? else {
        return Err(anyhow::anyhow!(
            "no store at {}: build one with `stripe-sync replay <events>` or `stripe-sync resync`, or pass --db",
            db
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
    let filtered = !filter.is_empty();

    // No filter and no customer: the store is merely empty, which is not a
    // problem found (status 0); only a filter that matches nothing is.
    if !filtered && !store.has_customers()? {
        printer.info(&format!(
            "the store {} holds no customers yet: run `stripe-sync replay fixtures/` or `stripe-sync resync --all`",
            db
        ));
    }
    // Every form streams, so a million customers start at once in little
    // memory: the table sizes its columns from its first rows.
    let out = printer.stdout_writer();
    let shown = if printer.json {
        stream(&store, &filter, JsonRows::new(out)?, printer)?
    } else if args.csv {
        stream(&store, &filter, CsvRows::new(out)?, printer)?
    } else {
        let none = filtered.then_some("no customer matches the filter");
        stream(&store, &filter, TableRows::new(out, printer, none), printer)?
    };
    Ok(Status::from_problems(shown == 0 && filtered))
}

/// Every row the filter shows into `sink` as the store yields them; the
/// duplicate-customer warning, found on the way, follows the data.
fn stream(
    store: &Store,
    filter: &Filter,
    mut sink: impl RowSink,
    printer: &Printer,
) -> anyhow::Result<u64> {
    let mut dups = DuplicateFinder::new(output::inspect::DUPLICATES_NAMED);
    let shown = store.for_each_mapping(filter, |r| {
        dups.see(r);
        Ok(sink.row(r)?)
    })?;
    sink.finish()?;
    output::inspect::warn_duplicate_customers(&dups.finish(), printer);
    Ok(shown)
}
