#!/usr/bin/env python3
"""Generate a large NDJSON file of realistic Stripe webhook events for benchmarks.

    python3 benches/gen_events.py --events 100000 --customers 5000 --seed 1 > /tmp/events.ndjson

Each line is a full event envelope whose `data.object` has the fields the
real API objects have (subscription, invoice, payment_intent, customer,
charge, product, ...). Subscription and invoice objects are 3-4 KB compact,
as the real ones are, so the mix below averages about 2.9 KB per event
(100k events: ~287 MB). The same seed always gives the same bytes.
Python 3.11 standard library only.

The mix, roughly:
  35% customer.subscription.*  (created/updated/deleted/trial_will_end/paused/...)
      plus ~1% checkout.session.completed (one in ten without `tier`: rejected)
  30% invoice.*                (paid, payment_succeeded, payment_failed, upcoming, ...)
  15% payment_intent.*         (succeeded, payment_failed, canceled)
   5% customer.created / customer.updated
  15% types the app ignores    (charge.succeeded, invoice.finalized, product.updated, ...)
  ~0.5% redeliveries of an earlier event (same id: `duplicate`)

Where the user id (`metadata.clerkUserId`) lives, per customer:
  ~62% on the subscription (so invoices resolve via subscription_details) and
       on the customer; ~25% only on the customer (resolve through the
       customer.* events, which come anywhere in the file); ~3% nowhere
       (unmapped: `unresolved`); ~10% on the subscription only.
  A few payment intents are guest payments (`customer: null`) or carry an
  expanded customer object. About a quarter of the customers are on the
  pre-basil API shape (`api_version` 2024-06-20: periods on the subscription,
  `invoice.subscription` / `subscription_details`), the rest on
  `2025-06-30.basil` (periods on `items.data[]`, `invoice.parent`).

Objects are rendered from templates compiled once into str.format strings,
so 100k events take a few seconds.
"""

import argparse
import json
import random
import re
import sys

BASIL = "2025-06-30.basil"
OLD = "2024-06-20"
ACCT = "RkT3sQ8vLm"
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
START = 1767225600  # 2026-01-01T00:00:00Z
SPAN = 150 * 86400  # events spread over ~5 months
MONTH = 30 * 86400


def b62(n, width):
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(B62[r])
    return "".join(out)


class Ids:
    def __init__(self, rng):
        self.rng = rng

    def rand(self, width):
        return b62(self.rng.getrandbits(6 * width), width)

    def stripe(self, prefix):
        return f"{prefix}_1{self.rand(5)}{ACCT}{self.rand(8)}"

    def short(self, prefix, width=14):
        return f"{prefix}_{self.rand(width)}"


def compile_template(obj):
    """json.dumps(obj) with "@@NAME@@" string values turned into {NAME} fields."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    s = s.replace("{", "{{").replace("}", "}}")
    return re.sub(r'"@@(\w+)@@"', r"{\1}", s)


def q(s):
    """A JSON string for a value known to need no escaping (ids, enums)."""
    return '"' + s + '"'


def dumps(x):
    return json.dumps(x, separators=(",", ":"), ensure_ascii=False)


def P(name):
    return f"@@{name}@@"


# ---------------------------------------------------------------- templates
PRICE_T = {
    "id": P("PRICE_ID"), "object": "price", "active": True, "billing_scheme": "per_unit",
    "created": P("PRICE_CREATED"), "currency": "usd", "custom_unit_amount": None, "livemode": False,
    "lookup_key": P("LOOKUP"), "metadata": {}, "nickname": None, "product": P("PRODUCT_ID"),
    "recurring": {"interval": "month", "interval_count": 1, "meter": None, "trial_period_days": None,
                  "usage_type": "licensed"},
    "tax_behavior": "exclusive", "tiers_mode": None, "transform_quantity": None, "type": "recurring",
    "unit_amount": P("AMOUNT"), "unit_amount_decimal": P("AMOUNT_S"),
}
PLAN_T = {
    "id": P("PRICE_ID"), "object": "plan", "active": True, "amount": P("AMOUNT"),
    "amount_decimal": P("AMOUNT_S"), "billing_scheme": "per_unit", "created": P("PRICE_CREATED"),
    "currency": "usd", "interval": "month", "interval_count": 1, "livemode": False, "metadata": {},
    "meter": None, "nickname": None, "product": P("PRODUCT_ID"), "tiers_mode": None,
    "transform_usage": None, "trial_period_days": None, "usage_type": "licensed",
}


def subscription_template(basil):
    item = {"id": P("SI"), "object": "subscription_item", "billing_thresholds": None,
            "created": P("SUB_CREATED"), "discounts": [], "metadata": {},
            "plan": P("PLAN"), "price": P("PRICE"), "quantity": P("QTY"), "subscription": P("SUB")}
    if basil:
        item["current_period_end"] = P("PEND")
        item["current_period_start"] = P("PSTART")
    item["tax_rates"] = []
    o = {"id": P("SUB"), "object": "subscription", "application": None, "application_fee_percent": None,
         "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
         "billing_cycle_anchor": P("SUB_CREATED"), "billing_cycle_anchor_config": None}
    if basil:
        o["billing_mode"] = {"type": "classic"}
    o.update({"billing_thresholds": None, "cancel_at": P("CANCEL_AT"),
              "cancel_at_period_end": P("CAPE"), "canceled_at": P("CANCELED_AT"),
              "cancellation_details": {"comment": None, "feedback": None, "reason": P("CANCEL_REASON")},
              "collection_method": "charge_automatically", "created": P("SUB_CREATED"), "currency": "usd"})
    if not basil:
        o["current_period_end"] = P("PEND")
        o["current_period_start"] = P("PSTART")
    o.update({"customer": P("CUS"), "days_until_due": None, "default_payment_method": P("PM"),
              "default_source": None, "default_tax_rates": [], "description": None})
    if not basil:
        o["discount"] = None
    o.update({"discounts": [], "ended_at": P("ENDED_AT"),
              "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
              "items": {"object": "list", "data": [item], "has_more": False, "total_count": 1,
                        "url": P("ITEMS_URL")},
              "latest_invoice": P("INV"), "livemode": False, "metadata": P("META"),
              "next_pending_invoice_item_invoice": None, "on_behalf_of": None,
              "pause_collection": None,
              "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                                   "save_default_payment_method": "on_subscription"},
              "pending_invoice_item_interval": None, "pending_setup_intent": None,
              "pending_update": None})
    if not basil:
        o["plan"] = P("PLAN")
        o["quantity"] = P("QTY")
    o.update({"schedule": None, "start_date": P("SUB_CREATED"), "status": P("STATUS"),
              "test_clock": None, "transfer_data": None, "trial_end": P("TRIAL_END"),
              "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
              "trial_start": P("TRIAL_START")})
    return compile_template(o)


def invoice_template(basil):
    line = {"id": P("LINE_ID"), "object": "line_item", "amount": P("TOTAL"), "currency": "usd",
            "description": P("LINE_DESC"), "discount_amounts": [], "discountable": True, "discounts": [],
            "invoice": P("INV"), "livemode": False, "metadata": P("SUB_META"),
            "period": {"end": P("PEND"), "start": P("PSTART")}}
    if basil:
        line.update({
            "parent": {"invoice_item_details": None,
                       "subscription_item_details": {"invoice_item": None, "proration": False,
                                                     "proration_details": {"credited_items": None},
                                                     "subscription": P("SUB"), "subscription_item": P("SI")},
                       "type": "subscription_item_details"},
            "pretax_credit_amounts": [],
            "pricing": {"price_details": {"price": P("PRICE_ID"), "product": P("PRODUCT_ID")},
                        "type": "price_details", "unit_amount_decimal": P("AMOUNT_S")},
            "quantity": P("QTY"), "subtotal": P("TOTAL"), "taxes": []})
    else:
        line.update({"amount_excluding_tax": P("TOTAL"), "invoice_item": None, "plan": P("PLAN"),
                     "price": P("PRICE"), "proration": False, "proration_details": {"credited_items": None},
                     "quantity": P("QTY"), "subscription": P("SUB"), "subscription_item": P("SI"),
                     "tax_amounts": [], "tax_rates": [], "type": "subscription",
                     "unit_amount_excluding_tax": P("AMOUNT_S")})
    o = {"id": P("INV"), "object": "invoice", "account_country": "US", "account_name": "Acme Notes, Inc.",
         "account_tax_ids": None, "amount_due": P("TOTAL"), "amount_overpaid": 0,
         "amount_paid": P("PAID_AMOUNT"), "amount_remaining": P("REMAINING"), "amount_shipping": 0,
         "application": None}
    if not basil:
        o["application_fee_amount"] = None
    o.update({"attempt_count": P("ATTEMPTS"), "attempted": P("ATTEMPTED"), "auto_advance": P("AUTO_ADVANCE"),
              "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None,
                                "provider": None, "status": None},
              "automatically_finalizes_at": None, "billing_reason": P("BILLING_REASON")})
    if not basil:
        o["charge"] = P("CHARGE")
    o.update({"collection_method": "charge_automatically", "created": P("INV_CREATED"), "currency": "usd",
              "custom_fields": None, "customer": P("CUSTOMER"), "customer_address": None,
              "customer_email": P("EMAIL"), "customer_name": P("NAME"), "customer_phone": None,
              "customer_shipping": None, "customer_tax_exempt": "none", "customer_tax_ids": [],
              "default_payment_method": None, "default_source": None, "default_tax_rates": [],
              "description": None})
    if not basil:
        o["discount"] = None
    o.update({"discounts": [], "due_date": None, "effective_at": P("FINALIZED_AT"), "ending_balance": 0,
              "footer": None, "from_invoice": None, "hosted_invoice_url": P("HOSTED_URL"),
              "invoice_pdf": P("PDF_URL"), "issuer": {"type": "self"}, "last_finalization_error": None,
              "latest_revision": None,
              "lines": {"object": "list", "data": [line], "has_more": False, "total_count": 1,
                        "url": P("LINES_URL")},
              "livemode": False, "metadata": P("INV_META"), "next_payment_attempt": P("NEXT_ATTEMPT"),
              "number": P("NUMBER"), "on_behalf_of": None})
    if not basil:
        o["paid"] = P("PAID")
        o["paid_out_of_band"] = False
        o["payment_intent"] = P("PI")
    else:
        o["parent"] = {"quote_details": None,
                       "subscription_details": {"metadata": P("SUB_META"), "subscription": P("SUB")},
                       "type": "subscription_details"}
    o.update({"payment_settings": {"default_mandate": None, "payment_method_options": None,
                                   "payment_method_types": None},
              "period_end": P("INV_CREATED"), "period_start": P("INV_CREATED"),
              "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0})
    if not basil:
        o["quote"] = None
    o.update({"receipt_number": None, "rendering": None, "shipping_cost": None, "shipping_details": None,
              "starting_balance": 0, "statement_descriptor": None, "status": P("INV_STATUS"),
              "status_transitions": {"finalized_at": P("FINALIZED_AT"),
                                     "marked_uncollectible_at": P("UNCOLLECTIBLE_AT"),
                                     "paid_at": P("PAID_AT"), "voided_at": None}})
    if not basil:
        o["subscription"] = P("SUB")
        o["subscription_details"] = {"metadata": P("SUB_META")}
    o.update({"subtotal": P("TOTAL"), "subtotal_excluding_tax": P("TOTAL")})
    if not basil:
        o["tax"] = None
    o.update({"test_clock": None, "total": P("TOTAL"), "total_discount_amounts": [],
              "total_excluding_tax": P("TOTAL")})
    if basil:
        o["total_pretax_credit_amounts"] = []
        o["total_taxes"] = []
    else:
        o["total_tax_amounts"] = []
    o["webhooks_delivered_at"] = P("DELIVERED_AT")
    return compile_template(o)


PI_T = compile_template({
    "id": P("PI"), "object": "payment_intent", "amount": P("AMOUNT"), "amount_capturable": 0,
    "amount_details": {"tip": {}}, "amount_received": P("RECEIVED"), "application": None,
    "application_fee_amount": None, "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
    "canceled_at": P("CANCELED_AT"), "cancellation_reason": P("CANCEL_REASON"),
    "capture_method": "automatic_async", "client_secret": P("SECRET"), "confirmation_method": "automatic",
    "created": P("PI_CREATED"), "currency": "usd", "customer": P("CUSTOMER"), "description": P("DESC"),
    "excluded_payment_method_types": None, "last_payment_error": P("LAST_ERROR"),
    "latest_charge": P("CHARGE"), "livemode": False, "metadata": P("META"), "next_action": None,
    "on_behalf_of": None, "payment_method": P("PM"),
    "payment_method_configuration_details": {"id": P("PMC"), "parent": None},
    "payment_method_options": {"card": {"installments": None, "mandate_options": None, "network": None,
                                        "request_three_d_secure": "automatic"}},
    "payment_method_types": ["card", "link"], "processing": None, "receipt_email": P("EMAIL"),
    "review": None, "setup_future_usage": None, "shipping": None, "source": None,
    "statement_descriptor": None, "statement_descriptor_suffix": None, "status": P("PI_STATUS"),
    "transfer_data": None, "transfer_group": None,
})

CUSTOMER_T = compile_template({
    "id": P("CUS"), "object": "customer",
    "address": {"city": None, "country": P("COUNTRY"), "line1": None, "line2": None, "postal_code": None,
                "state": None},
    "balance": 0, "created": P("CUS_CREATED"), "currency": "usd", "default_source": None,
    "delinquent": False, "description": None, "discount": None, "email": P("EMAIL"),
    "invoice_prefix": P("PREFIX"),
    "invoice_settings": {"custom_fields": None, "default_payment_method": P("PM_ID"), "footer": None,
                         "rendering_options": None},
    "livemode": False, "metadata": P("META"), "name": P("NAME"), "next_invoice_sequence": 2,
    "phone": None, "preferred_locales": ["en"], "shipping": None, "tax_exempt": "none", "test_clock": None,
})

PM_T = compile_template({
    "id": P("PM_ID"), "object": "payment_method", "allow_redisplay": "always",
    "billing_details": {"address": {"city": None, "country": P("COUNTRY"), "line1": None, "line2": None,
                                    "postal_code": None, "state": None},
                        "email": P("EMAIL"), "name": P("NAME"), "phone": None, "tax_id": None},
    "card": {"brand": P("BRAND"),
             "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
             "country": P("COUNTRY"), "display_brand": P("BRAND"), "exp_month": P("EXP_M"),
             "exp_year": P("EXP_Y"), "fingerprint": P("FP"), "funding": P("FUNDING"), "generated_from": None,
             "last4": P("LAST4"), "networks": {"available": [P("BRAND")], "preferred": None},
             "regulated_status": "unregulated", "three_d_secure_usage": {"supported": True}, "wallet": None},
    "created": P("CUS_CREATED"), "customer": P("CUS"), "livemode": False, "metadata": {}, "type": "card",
})

CHARGE_T = compile_template({
    "id": P("CH"), "object": "charge", "amount": P("AMOUNT"), "amount_captured": P("AMOUNT"),
    "amount_refunded": 0, "application": None, "application_fee": None, "application_fee_amount": None,
    "balance_transaction": P("TXN"),
    "billing_details": {"address": {"city": None, "country": P("COUNTRY"), "line1": None, "line2": None,
                                    "postal_code": None, "state": None},
                        "email": P("EMAIL"), "name": P("NAME"), "phone": None, "tax_id": None},
    "calculated_statement_descriptor": "ACME NOTES", "captured": True, "created": P("CREATED"),
    "currency": "usd", "customer": P("CUSTOMER"), "description": "Subscription update", "destination": None,
    "dispute": None, "disputed": False, "failure_balance_transaction": None, "failure_code": None,
    "failure_message": None, "fraud_details": {}, "livemode": False, "metadata": {}, "on_behalf_of": None,
    "outcome": {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                "network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                "risk_score": P("RISK"), "seller_message": "Payment complete.", "type": "authorized"},
    "paid": True, "payment_intent": P("PI"), "payment_method": P("PM_ID"),
    "payment_method_details": {"card": {"amount_authorization": P("AMOUNT"), "authorization_code": None,
                                        "brand": P("BRAND"),
                                        "checks": {"address_line1_check": None, "address_postal_code_check": None,
                                                   "cvc_check": "pass"},
                                        "country": P("COUNTRY"), "exp_month": P("EXP_M"), "exp_year": P("EXP_Y"),
                                        "fingerprint": P("FP"), "funding": P("FUNDING"), "installments": None,
                                        "last4": P("LAST4"), "mandate": None, "network": P("BRAND"),
                                        "network_token": {"used": False}, "three_d_secure": None,
                                        "wallet": None},
                               "type": "card"},
    "radar_options": {}, "receipt_email": P("EMAIL"), "receipt_number": None, "receipt_url": P("RECEIPT_URL"),
    "refunded": False, "review": None, "shipping": None, "source": None, "source_transfer": None,
    "statement_descriptor": None, "statement_descriptor_suffix": None, "status": "succeeded",
    "transfer_data": None, "transfer_group": None,
})

PRODUCT_T = compile_template({
    "id": P("PRODUCT_ID"), "object": "product", "active": True, "attributes": [], "created": P("PRICE_CREATED"),
    "default_price": P("PRICE_ID"), "description": P("DESC"), "images": [], "livemode": False,
    "marketing_features": [], "metadata": {}, "name": P("NAME"), "package_dimensions": None,
    "shippable": None, "statement_descriptor": None, "tax_code": None, "type": "service",
    "unit_label": None, "updated": P("UPDATED"), "url": None,
})

CHECKOUT_T = compile_template({
    "id": P("CS"), "object": "checkout.session", "adaptive_pricing": {"enabled": True},
    "after_expiration": None, "allow_promotion_codes": True, "amount_subtotal": P("AMOUNT"),
    "amount_total": P("AMOUNT"),
    "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
    "billing_address_collection": "auto", "cancel_url": "https://app.acme-notes.example/billing?canceled=1",
    "client_reference_id": P("CLIENT_REF"), "client_secret": None,
    "collected_information": {"business_name": None, "individual_name": None, "shipping_details": None},
    "consent": None, "consent_collection": None, "created": P("CS_CREATED"), "currency": "usd",
    "currency_conversion": None, "custom_fields": [],
    "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                    "terms_of_service_acceptance": None},
    "customer": P("CUS"), "customer_creation": None,
    "customer_details": {"address": {"city": None, "country": P("COUNTRY"), "line1": None, "line2": None,
                                     "postal_code": None, "state": None},
                         "business_name": None, "email": P("EMAIL"), "individual_name": None, "name": P("NAME"),
                         "phone": None, "tax_exempt": "none", "tax_ids": []},
    "customer_email": None, "discounts": [], "expires_at": P("EXPIRES"), "invoice": P("INV"),
    "invoice_creation": None, "livemode": False, "locale": None, "metadata": P("META"),
    "mode": "subscription", "origin_context": None, "payment_intent": None, "payment_link": None,
    "payment_method_collection": "always",
    "payment_method_configuration_details": {"id": P("PMC"), "parent": None},
    "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
    "payment_method_types": ["card", "link"], "payment_status": "paid", "permissions": None,
    "phone_number_collection": {"enabled": False}, "recovered_from": None,
    "saved_payment_method_options": {"allow_redisplay_filters": ["always"],
                                     "payment_method_remove": "disabled", "payment_method_save": None},
    "setup_intent": None, "shipping_address_collection": None, "shipping_cost": None,
    "shipping_options": [], "status": "complete", "submit_type": None, "subscription": P("SUB"),
    "success_url": "https://app.acme-notes.example/billing/success?session_id={CHECKOUT_SESSION_ID}",
    "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
    "ui_mode": "hosted", "url": None, "wallet_options": None,
})

PORTAL_T = compile_template({
    "id": P("BPS"), "object": "billing_portal.session", "configuration": P("BPC"), "created": P("CREATED"),
    "customer": P("CUS"), "flow": None, "livemode": False, "locale": None, "on_behalf_of": None,
    "return_url": "https://app.acme-notes.example/billing", "url": P("PORTAL_URL"),
})

PRICE_TPL = compile_template(PRICE_T)
PLAN_TPL = compile_template(PLAN_T)
SUB_T = {True: subscription_template(True), False: subscription_template(False)}
INV_T = {True: invoice_template(True), False: invoice_template(False)}

EVENT_HEAD = '{{"id":"{eid}","object":"event","api_version":"{api}","created":{created},"data":{{"object":'
# previous_attributes (or nothing) is appended between the object and the tail


def event_line(eid, api, created, obj, prev, request_id, etype):
    tail_prev = ',"previous_attributes":' + prev + "}" if prev else "}"
    req = '{"id":null,"idempotency_key":null}' if request_id is None else '{"id":"' + request_id + '","idempotency_key":null}'
    return (EVENT_HEAD.format(eid=eid, api=api, created=created) + obj + tail_prev
            + ',"livemode":false,"pending_webhooks":1,"request":' + req + ',"type":"' + etype + '"}')


# ---------------------------------------------------------------- catalog
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken",
         "Margaret", "Dennis", "Shafi", "Leslie", "Hedy", "Tim", "Sophie", "Guido", "Lin", "Yukihiro"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "McCarthy", "Perlman",
        "Thompson", "Hamilton", "Ritchie", "Goldwasser", "Lamport", "Lamarr", "Berners-Lee", "Wilson",
        "van Rossum", "Chen", "Matsumoto"]
COUNTRIES = ["US", "US", "US", "GB", "DE", "FR", "NL", "CA", "AU", "JP"]
CARDS = [("visa", "4242", "credit"), ("visa", "5556", "debit"), ("mastercard", "4444", "credit"),
         ("mastercard", "8210", "debit"), ("amex", "8431", "credit"), ("visa", "3155", "credit"),
         ("discover", "1117", "credit"), ("visa", "0077", "credit")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.events < 1 or args.customers < 1:
        ap.error("--events and --customers must be positive")

    rng = random.Random(args.seed)
    ids = Ids(rng)
    rand = rng.random
    randint = rng.randint

    products = []
    for name, amount, lookup in [("Basic", 900, "basic_monthly"), ("Pro", 2000, "pro_monthly"),
                                 ("Team", 1500, "team_monthly_per_seat"), ("Pro annual", 19200, "pro_yearly")]:
        p = {"PRODUCT_ID": q(ids.short("prod")), "PRICE_ID": q(ids.stripe("price")),
             "PRICE_CREATED": str(START - randint(30, 400) * 86400), "AMOUNT": str(amount),
             "AMOUNT_S": q(str(amount)), "LOOKUP": q(lookup), "NAME": q(name)}
        p["PRICE"] = PRICE_TPL.format(**p)
        p["PLAN"] = PLAN_TPL.format(**p)
        p["DESC"] = q(f"{name}: 1 {'seat' if name == 'Team' else 'workspace'}, billed monthly")
        products.append(p)

    # ---- customers
    custs = []
    for i in range(args.customers):
        r = rand()
        kind = "meta" if r < 0.62 else "cust_only" if r < 0.87 else "unmapped" if r < 0.90 else "sub_only"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {last}"
        email = f"{first.lower()}.{last.lower().replace(' ', '')}{i}@example.com"
        user = None if kind == "unmapped" else "user_2" + ids.rand(26)
        cus = ids.short("cus")
        created = START - randint(0, 200) * 86400 + randint(0, 86399)
        brand, last4, funding = rng.choice(CARDS)
        country = rng.choice(COUNTRIES)
        user_meta = dumps({"clerkUserId": user}) if user else "{}"
        c = {"cus": cus, "user": user, "kind": kind, "basil": rand() >= 0.25, "name": name, "email": email,
             "created": created, "country": country}
        pm_id = ids.stripe("pm")
        vals = {"CUS": q(cus), "EMAIL": q(email), "NAME": dumps(name), "COUNTRY": q(country),
                "CUS_CREATED": str(created), "PM_ID": q(pm_id), "BRAND": q(brand), "LAST4": q(last4),
                "FUNDING": q(funding), "EXP_M": str(randint(1, 12)), "EXP_Y": str(randint(2027, 2033)),
                "FP": q(ids.rand(16)), "PREFIX": q(ids.rand(8).upper())}
        c["vals"] = vals
        c["pm_json"] = PM_T.format(**vals)
        c["cust_meta"] = user_meta if kind in ("meta", "cust_only") else "{}"
        c["sub_meta"] = user_meta if kind in ("meta", "sub_only") else "{}"
        c["customer_json"] = CUSTOMER_T.format(META=c["cust_meta"], **vals)
        c["customer_json_old"] = CUSTOMER_T.format(META="{}", **vals)
        nsubs = 2 if rand() < 0.15 else 1
        c["subs"] = []
        t0 = START + randint(0, SPAN // 2)
        for k in range(nsubs):
            prod = products[0] if k == 0 and nsubs == 2 else rng.choice(products[1:])
            c["subs"].append({"id": ids.stripe("sub"), "si": ids.short("si"), "prod": prod,
                              "created": t0 - (nsubs - 1 - k) * 40 * 86400,
                              "qty": randint(2, 25) if prod["NAME"] == '"Team"' else 1,
                              "expanded_pm": rand() < 0.1})
        custs.append(c)

    order = list(range(len(custs)))
    rng.shuffle(order)
    created_queue = iter(order)  # customer.created first for each customer, then customer.updated

    TYPES = [  # (weight, kind, event type)
        (0.34 * 0.15, "sub", "customer.subscription.created"),
        (0.34 * 0.63, "sub", "customer.subscription.updated"),
        (0.34 * 0.08, "sub", "customer.subscription.deleted"),
        (0.34 * 0.04, "sub", "customer.subscription.trial_will_end"),
        (0.34 * 0.03, "sub", "customer.subscription.paused"),
        (0.34 * 0.03, "sub", "customer.subscription.resumed"),
        (0.34 * 0.02, "sub", "customer.subscription.pending_update_applied"),
        (0.34 * 0.02, "sub", "customer.subscription.pending_update_expired"),
        (0.01, "checkout", "checkout.session.completed"),
        (0.30 * 0.34, "inv", "invoice.paid"),
        (0.30 * 0.34, "inv", "invoice.payment_succeeded"),
        (0.30 * 0.13, "inv", "invoice.payment_failed"),
        (0.30 * 0.08, "inv", "invoice.upcoming"),
        (0.30 * 0.06, "inv", "invoice.payment_action_required"),
        (0.30 * 0.05, "inv", "invoice.marked_uncollectible"),
        (0.15 * 0.70, "pi", "payment_intent.succeeded"),
        (0.15 * 0.20, "pi", "payment_intent.payment_failed"),
        (0.15 * 0.10, "pi", "payment_intent.canceled"),
        (0.05, "cust", "customer.*"),
        (0.15 * 0.40, "charge", "charge.succeeded"),
        (0.15 * 0.15, "inv_ignored", "invoice.finalized"),
        (0.15 * 0.10, "inv_ignored", "invoice.created"),
        (0.15 * 0.10, "product", "product.updated"),
        (0.15 * 0.10, "pm", "payment_method.attached"),
        (0.15 * 0.05, "product", "product.created"),
        (0.15 * 0.10, "portal", "billing_portal.session.created"),
    ]
    cum, acc = [], 0.0
    for w, kind, et in TYPES:
        acc += w
        cum.append((acc, kind, et))
    total_w = acc

    def pick_type():
        x = rand() * total_w
        for c_, kind, et in cum:
            if x < c_:
                return kind, et
        return cum[-1][1], cum[-1][2]

    SUB_STATUS = {
        "customer.subscription.created": [("active", 0.8), ("trialing", 0.15), ("incomplete", 0.05)],
        "customer.subscription.updated": [("active", 0.8), ("past_due", 0.1), ("trialing", 0.04),
                                          ("unpaid", 0.03), ("canceled", 0.03)],
        "customer.subscription.deleted": [("canceled", 1.0)],
        "customer.subscription.trial_will_end": [("trialing", 1.0)],
        "customer.subscription.paused": [("paused", 1.0)],
        "customer.subscription.resumed": [("active", 1.0)],
        "customer.subscription.pending_update_applied": [("active", 1.0)],
        "customer.subscription.pending_update_expired": [("active", 0.6), ("past_due", 0.4)],
    }

    def pick_status(et):
        x = rand()
        for st, w in SUB_STATUS[et]:
            if x < w:
                return st
            x -= w
        return SUB_STATUS[et][0][0]

    INV_KIND = {
        "invoice.paid": ("paid", "subscription_cycle"),
        "invoice.payment_succeeded": ("paid", "subscription_cycle"),
        "invoice.payment_failed": ("open", "subscription_cycle"),
        "invoice.upcoming": ("draft", "upcoming"),
        "invoice.payment_action_required": ("open", "subscription_update"),
        "invoice.marked_uncollectible": ("uncollectible", "subscription_cycle"),
        "invoice.finalized": ("open", "subscription_cycle"),
        "invoice.created": ("draft", "subscription_cycle"),
    }

    out = sys.stdout
    buf = []
    recent = []
    n_events = args.events
    step = SPAN / n_events

    for i in range(n_events):
        created = START + int(i * step) + randint(-90, 90)  # small jitter: some events out of order
        if recent and rand() < 0.005:
            buf.append(rng.choice(recent))  # redelivery of an earlier event, byte for byte
            continue
        eid = ids.stripe("evt")
        kind, et = pick_type()
        c = custs[randint(0, len(custs) - 1)]
        v = c["vals"]
        api = BASIL if c["basil"] else OLD
        req_id = None
        prev = None
        if kind == "sub" or kind == "checkout":
            sub = c["subs"][-1] if rand() < 0.85 else rng.choice(c["subs"])
            prod = sub["prod"]
            sc = min(sub["created"], created - 60)
            k = max(0, (created - sc) // MONTH)
            pstart = sc + k * MONTH
            inv_id = q(ids.stripe("in"))
            if kind == "checkout":
                meta = {"clerkUserId": c["user"], "tier": prod["NAME"].strip('"').split()[0].lower()} if c["user"] else {}
                if rand() < 0.1:
                    meta.pop("tier", None)
                obj = CHECKOUT_T.format(
                    CS=q("cs_test_a1" + ids.rand(56)), AMOUNT=str(int(prod["AMOUNT"]) * sub["qty"]),
                    CLIENT_REF=q(c["user"]) if c["user"] else "null", CS_CREATED=str(created - 120),
                    CUS=v["CUS"], COUNTRY=v["COUNTRY"], EMAIL=v["EMAIL"], NAME=v["NAME"],
                    EXPIRES=str(created + 86280), INV=inv_id, META=dumps(meta),
                    PMC=q(ids.stripe("pmc")), SUB=q(sub["id"]))
                api = BASIL
            else:
                status = pick_status(et)
                cape = status == "active" and rand() < 0.1
                canceled = status == "canceled"
                trial = status == "trialing" or et == "customer.subscription.trial_will_end"
                obj = SUB_T[c["basil"]].format(
                    SI=q(sub["si"]), SUB_CREATED=str(sc), PLAN=prod["PLAN"], PRICE=prod["PRICE"],
                    QTY=str(sub["qty"]), SUB=q(sub["id"]), PEND=str(pstart + MONTH), PSTART=str(pstart),
                    CANCEL_AT=str(pstart + MONTH) if cape else (str(created) if canceled else "null"),
                    CAPE="true" if cape else "false",
                    CANCELED_AT=str(created - 30) if cape or canceled else "null",
                    CANCEL_REASON='"cancellation_requested"' if cape or canceled else "null",
                    CUS=v["CUS"], PM=c["pm_json"] if sub["expanded_pm"] else v["PM_ID"],
                    ENDED_AT=str(created) if canceled else "null",
                    ITEMS_URL=q("/v1/subscription_items?subscription=" + sub["id"]),
                    INV=inv_id, META=c["sub_meta"], STATUS=q(status),
                    TRIAL_END=str(pstart + 14 * 86400) if trial else "null",
                    TRIAL_START=str(pstart) if trial else "null")
                if et == "customer.subscription.updated":
                    prev = ('{"cancel_at":null,"cancel_at_period_end":false,"canceled_at":null}' if cape
                            else '{"status":"active"}' if status != "active"
                            else '{"latest_invoice":"' + ids.stripe("in") + '"}')
                elif et in ("customer.subscription.paused", "customer.subscription.resumed"):
                    prev = '{"status":"' + ("trialing" if et.endswith("paused") else "paused") + '"}'
                if et in ("customer.subscription.created", "customer.subscription.deleted") or rand() < 0.3:
                    req_id = ids.short("req")
        elif kind == "inv" or kind == "inv_ignored":
            sub = c["subs"][-1]
            prod = sub["prod"]
            status, reason = INV_KIND[et]
            sc = min(sub["created"], created - 60)
            k = max(0, (created - sc) // MONTH)
            pstart = sc + k * MONTH
            total = int(prod["AMOUNT"]) * sub["qty"]
            paid = status == "paid"
            inv = ids.stripe("in")
            if et == "invoice.upcoming":
                inv_json = "null"
            else:
                inv_json = q(inv)
            fin = "null" if status == "draft" else str(created - 5)
            customer = c["customer_json"] if rand() < 0.02 else v["CUS"]
            obj = INV_T[c["basil"]].format(
                LINE_ID=q(ids.stripe("il")), TOTAL=str(total),
                LINE_DESC=dumps(f"{sub['qty']} × {prod['NAME'].strip(chr(34))} (at ${int(prod['AMOUNT']) / 100:.2f} / month)"),
                INV=inv_json, SUB_META=c["sub_meta"], PEND=str(pstart + MONTH), PSTART=str(pstart),
                SUB=q(sub["id"]), SI=q(sub["si"]), PRICE_ID=prod["PRICE_ID"], PRODUCT_ID=prod["PRODUCT_ID"],
                AMOUNT_S=prod["AMOUNT_S"], QTY=str(sub["qty"]), PLAN=prod["PLAN"], PRICE=prod["PRICE"],
                PAID_AMOUNT=str(total if paid else 0), REMAINING=str(0 if paid else total),
                ATTEMPTS=str(0 if status == "draft" else randint(1, 4)),
                ATTEMPTED="false" if status == "draft" else "true",
                AUTO_ADVANCE="true" if status in ("draft", "open") else "false",
                BILLING_REASON=q(reason), CHARGE=q(ids.stripe("ch")) if paid else "null",
                INV_CREATED=str(created - 10), CUSTOMER=customer, EMAIL=v["EMAIL"], NAME=v["NAME"],
                FINALIZED_AT=fin,
                HOSTED_URL="null" if status == "draft" else q(f"https://invoice.stripe.com/i/acct_1{ACCT}/test_{ids.rand(40)}?s=ap"),
                PDF_URL="null" if status == "draft" else q(f"https://pay.stripe.com/invoice/acct_1{ACCT}/test_{ids.rand(40)}/pdf?s=ap"),
                LINES_URL=q(f"/v1/invoices/{inv}/lines"), INV_META="{}",
                NEXT_ATTEMPT=str(created + 3 * 86400) if status in ("open", "draft") else "null",
                NUMBER="null" if status == "draft" else v["PREFIX"][:-1] + "-" + f"{k + 1:04d}" + '"',
                PAID="true" if paid else "false", PI=q(ids.stripe("pi")) if status != "draft" else "null",
                INV_STATUS=q(status), UNCOLLECTIBLE_AT=str(created - 1) if status == "uncollectible" else "null",
                PAID_AT=str(created - 2) if paid else "null",
                DELIVERED_AT="null" if status == "draft" else str(created - 1))
        elif kind == "pi":
            r = rand()
            if r < 0.05:
                customer, meta, email = "null", "{}", q(f"guest{randint(1, 99999)}@example.org")
            elif r < 0.10:
                customer, meta, email = c["customer_json"], "{}", v["EMAIL"]
            elif r < 0.55 and c["user"] and c["kind"] != "cust_only":
                customer, meta, email = v["CUS"], dumps({"clerkUserId": c["user"], "purpose": "credits_pack"}), v["EMAIL"]
            else:
                customer, meta, email = v["CUS"], "{}", v["EMAIL"]
            amount = rng.choice((500, 900, 2000, 4500, 4900, 19200))
            pi = ids.stripe("pi")
            if et == "payment_intent.succeeded":
                st, recv, can, canr, err, ch = "succeeded", amount, "null", "null", "null", q(ids.stripe("ch"))
            elif et == "payment_intent.payment_failed":
                st, recv, can, canr, ch = "requires_payment_method", 0, "null", "null", "null"
                err = ('{"advice_code":null,"charge":null,"code":"card_declined","decline_code":"insufficient_funds",'
                       '"doc_url":"https://stripe.com/docs/error-codes/card-declined","message":"Your card has insufficient funds.",'
                       '"network_advice_code":null,"network_decline_code":null,"param":null,"type":"card_error"}')
            else:
                st, recv, can, canr, err, ch = "canceled", 0, str(created - 1), '"abandoned"', "null", "null"
            obj = PI_T.format(PI=q(pi), AMOUNT=str(amount), RECEIVED=str(recv), CANCELED_AT=can,
                              CANCEL_REASON=canr, SECRET=q(f"{pi}_secret_{ids.rand(25)}"),
                              PI_CREATED=str(created - 40), CUSTOMER=customer,
                              DESC='"Subscription update"' if meta == "{}" else '"Credits pack"',
                              LAST_ERROR=err, CHARGE=ch, META=meta,
                              PM="null" if st != "succeeded" else v["PM_ID"], PMC=q(ids.stripe("pmc")),
                              EMAIL=email, PI_STATUS=q(st))
        elif kind == "cust":
            idx = next(created_queue, None)
            if idx is not None:
                cc = custs[idx]
                et = "customer.created"
                obj = cc["customer_json"]
                req_id = ids.short("req")
            else:
                cc = c
                et = "customer.updated"
                obj = cc["customer_json"]
                if cc["cust_meta"] != "{}" and rand() < 0.3:
                    prev = '{"metadata":{"clerkUserId":null}}'
                else:
                    prev = '{"email":"old-' + cc["email"] + '"}'
            api = BASIL if cc["basil"] else OLD
        elif kind == "charge":
            amount = rng.choice((900, 2000, 4500, 19200))
            obj = CHARGE_T.format(CH=q(ids.stripe("ch")), AMOUNT=str(amount), TXN=q(ids.stripe("txn")),
                                  COUNTRY=v["COUNTRY"], EMAIL=v["EMAIL"], NAME=v["NAME"], CREATED=str(created - 1),
                                  CUSTOMER=v["CUS"], RISK=str(randint(3, 70)), PI=q(ids.stripe("pi")),
                                  PM_ID=v["PM_ID"], BRAND=v["BRAND"], EXP_M=v["EXP_M"], EXP_Y=v["EXP_Y"],
                                  FP=v["FP"], FUNDING=v["FUNDING"], LAST4=v["LAST4"],
                                  RECEIPT_URL=q("https://pay.stripe.com/receipts/payment/" + ids.rand(60)))
        elif kind == "product":
            p = rng.choice(products)
            obj = PRODUCT_T.format(UPDATED=str(created), **p)
            if et == "product.updated":
                prev = '{"updated":' + str(created - randint(86400, 90 * 86400)) + "}"
            req_id = ids.short("req")
        elif kind == "pm":
            obj = c["pm_json"]
            prev = None
        else:  # portal
            obj = PORTAL_T.format(BPS=q(ids.short("bps", 24)), BPC=q(ids.short("bpc", 24)), CREATED=str(created),
                                  CUS=v["CUS"], PORTAL_URL=q("https://billing.stripe.com/p/session/test_" + ids.rand(48)))
            req_id = ids.short("req")
        if et == "invoice.upcoming":
            obj = '{"object"' + obj[len('{"id":null,"object"'):]  # upcoming invoices have no id
        line = event_line(eid, api, created, obj, prev, req_id, et)
        buf.append(line)
        if len(recent) < 2000:
            recent.append(line)
        elif rand() < 0.05:
            recent[randint(0, 1999)] = line
        if len(buf) >= 5000:
            out.write("\n".join(buf))
            out.write("\n")
            buf.clear()
    if buf:
        out.write("\n".join(buf))
        out.write("\n")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(0)
