//! `stripe-sync inspect`: the user -> customer -> subscription mapping.

use crate::Status;
use crate::cli::{GlobalArgs, InspectArgs};
use crate::output::inspect::{CsvRows, JsonRows, RowSink};
use crate::output::{self, Printer};
use crate::store::{self, DuplicateFinder, Filter, Store};

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
    let filtered = !filter.is_empty();

    // No filter and no customer: the store is merely empty, which is not a
    // problem found (status 0); only a filter that matches nothing is.
    if !filtered && !store.has_customers()? {
        printer.info(&format!(
            "the store {} holds no customers yet: run `stripe-sync replay fixtures/` or `stripe-sync resync --all`",
            db.display()
        ));
    }
    // JSON and CSV stream, so a million customers start at once and take
    // no memory; a table needs every row to size its columns.
    let shown = if printer.json {
        stream(
            &store,
            &filter,
            JsonRows::new(printer.stdout_writer())?,
            printer,
        )?
    } else if args.csv {
        stream(
            &store,
            &filter,
            CsvRows::new(printer.stdout_writer())?,
            printer,
        )?
    } else {
        table(&store, &filter, printer)?
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

/// The rows as a table, after the duplicate-customer warning.
fn table(store: &Store, filter: &Filter, printer: &Printer) -> anyhow::Result<u64> {
    let rows = store.mapping(filter)?;
    let mut dups = DuplicateFinder::new(output::inspect::DUPLICATES_NAMED);
    rows.iter().for_each(|r| dups.see(r));
    output::inspect::warn_duplicate_customers(&dups.finish(), printer);
    if rows.is_empty() && !filter.is_empty() {
        printer.info("no customer matches the filter");
    } else {
        printer.out(&output::inspect::table(&rows, printer))?;
    }
    Ok(rows.len() as u64)
}
