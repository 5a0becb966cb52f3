"""Issue 17 §6: time-of-use tariffs, money-mode meters, their calendar, quotes per band and
the recognition of money consumed."""

from datetime import date, datetime, timedelta

import psycopg2

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..services import credit_token, engine, prepayment, tou
from ..services.sale_info import sale_info
from ..services.vending import VendingError, vend
from .test_prepayment_accounting import PrepaymentCase
from .test_vending import VendingCase


class TouMixin:
    @classmethod
    def _tou_tariff(cls, name="Time of use", date_start=date(2026, 1, 1), peak=0.40, off=0.10):
        tariff = cls.env["smartpm.tariff"].create({"name": name, "price_per_kwh": 1.0})
        cls._add_version(tariff, date_start, peak, off)
        tariff.pricing_mode = "tou"
        return tariff

    @classmethod
    def _add_version(cls, tariff, date_start, peak=0.40, off=0.10, gap=False, overlap=False):
        bands = [
            Command.create({"name": "Off-peak", "rate": 1, "price_per_kwh": off}),
            Command.create({"name": "Peak", "rate": 2, "price_per_kwh": peak}),
        ]
        # as the form does: the bands saved first (the hours name them), then the hours
        version = cls.env["smartpm.tariff.tou.version"].create(
            {"tariff_id": tariff.id, "date_start": date_start, "band_ids": bands}
        )
        off_band, peak_band = version.band_ids.sorted("rate")
        evening_end = 21.0 if not gap else 21.5
        rules = [
            Command.create({"band_id": off_band.id, "start_hour": 0.0, "end_hour": 17.0}),
            Command.create({"band_id": peak_band.id, "start_hour": 17.0, "end_hour": 21.0}),
            Command.create(
                {
                    "band_id": off_band.id,
                    "start_hour": evening_end if not overlap else 20.5,
                    "end_hour": 24.0,
                }
            ),
        ]
        version.write({"rule_ids": rules})
        return version


@tagged("post_install", "-at_install")
class TestTouTariff(TouMixin, VendingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou_tariff = cls._tou_tariff()
        cls.money_tenant = cls._tenant("Yaw TOU")
        cls.money_meter = cls._meter(
            "TOU-1",
            tenant_id=cls.money_tenant.id,
            state="active",
            credit_mode="money",
            tariff_id=cls.tou_tariff.id,
        )
        cls.manager = new_test_user(cls.env, "t_mgr_tou", groups="smartpm_prepay.group_manager")

    def test_a_gap_is_refused_naming_the_tariff_and_the_hours(self):
        with self.assertRaises(ValidationError) as err:
            self._add_version(self.tou_tariff, date(2026, 6, 1), gap=True)
        message = str(err.exception)
        self.assertIn("Time of use", message)
        self.assertIn("no band covers Monday 21:00-21:30", message)
        self.assertEqual(len(self.tou_tariff.tou_version_ids), 1)

    def test_an_overlap_is_refused_naming_both_bands(self):
        with self.assertRaises(ValidationError) as err:
            self._add_version(self.tou_tariff, date(2026, 6, 1), overlap=True)
        message = str(err.exception)
        self.assertIn("band Off-peak overlaps band Peak on Monday 20:30-21:00", message)

    def test_band_hours_deleted_on_their_own_leaving_a_gap_are_refused(self):
        version = self.tou_tariff.tou_version_ids
        peak_hours = version.rule_ids.filtered(lambda r: r.band_id.name == "Peak")
        with self.assertRaises(ValidationError) as err:
            peak_hours.unlink()
        self.assertIn("Time of use", str(err.exception))
        self.assertIn("no band covers Monday 17:00-21:00", str(err.exception))
        self.assertTrue(peak_hours.exists())
        with self.assertRaises(ValidationError):
            peak_hours.end_hour = 20.0
        self.assertEqual(peak_hours.end_hour, 21.0)

    def test_hours_replaced_in_one_save_of_the_version_are_no_gap(self):
        version = self.tou_tariff.tou_version_ids
        peak = version.band_ids.filtered(lambda b: b.name == "Peak")
        peak_hours = version.rule_ids.filtered(lambda r: r.band_id == peak)
        version.write(
            {
                "rule_ids": [
                    Command.delete(peak_hours.id),
                    Command.create({"band_id": peak.id, "start_hour": 17.0, "end_hour": 21.0}),
                ]
            }
        )
        self.assertFalse(peak_hours.exists())
        self.assertEqual(len(version.rule_ids.filtered(lambda r: r.band_id == peak)), 1)

    def test_a_band_with_hours_cannot_be_deleted(self):
        version = self.tou_tariff.tou_version_ids
        peak = version.band_ids.filtered(lambda b: b.name == "Peak")
        with self.assertRaises(UserError) as err:
            peak.unlink()
        message = str(err.exception)
        self.assertIn("band Peak still has hours", message)
        self.assertIn("17:00-21:00", message)
        self.assertTrue(peak.exists())

    def test_seasons_each_need_their_hours(self):
        version = self.tou_tariff.tou_version_ids
        with self.assertRaises(ValidationError) as err:
            version.write(
                {
                    "season_ids": [
                        Command.create({"name": "Summer", "start_month": "4", "start_day": 1}),
                        Command.create({"name": "Winter", "start_month": "10", "start_day": 1}),
                    ],
                    "rule_ids": [
                        Command.clear(),
                        Command.create(
                            {
                                "band_id": version.band_ids[0].id,
                                "start_hour": 0,
                                "end_hour": 24,
                                "season_id": False,
                                "sat": False,
                                "sun": False,
                            }
                        ),
                    ],
                }
            )
        self.assertIn("no band covers Saturday 00:00-24:00 (season Summer)", str(err.exception))

    def test_a_tou_tariff_needs_a_money_meter_and_the_reverse(self):
        with self.assertRaises(ValidationError) as err:
            self._meter("TOU-KWH", state="active", tariff_id=self.tou_tariff.id)
        self.assertIn("must be in money mode", str(err.exception))
        with self.assertRaises(ValidationError):
            self._meter("FLAT-MONEY", credit_mode="money", tariff_id=self.tariff.id)

    def test_quote_shows_the_credit_and_each_band(self):
        info = sale_info(self.money_meter, 10.0)
        self.assertFalse(info["reason"])
        quote = info["quote"]
        self.assertEqual(quote["credit_money"], 10.0)
        self.assertEqual(quote["kwh"], 0.0)
        bands = {b["name"]: b for b in info["bands"]}
        self.assertEqual(bands["Peak"]["kwh"], 25.0)
        self.assertEqual(bands["Off-peak"]["kwh"], 100.0)
        self.assertIn("every day 17:00-21:00", bands["Peak"]["hours"])
        self.assertIn("Peak (every day 17:00-21:00)", info["tiers_info"])
        self.assertIn("Time of use", info["price_info"])

    def test_money_sale_mints_a_money_token_no_kwh_check_accepts(self):
        purchase = vend(self.env, self.money_meter, 10.0, "backoffice", "TOU-R1")
        self.assertEqual(purchase.credit_mode, "money")
        self.assertEqual(purchase.credit_money, 10.0)
        self.assertEqual(purchase.kwh, 0.0)
        raw = bytes.fromhex(purchase.sudo().token)
        key = bytes.fromhex(self.money_meter.sudo().token_key)
        self.assertEqual(len(raw), credit_token.MONEY_TOKEN_LEN)
        number, units, _tag, _mac = credit_token.parse_money(raw)
        self.assertEqual((number, units), (purchase.transfer_number, 10_000))
        self.assertTrue(credit_token.verify_money(key, "TOU-1", raw))
        # domain separation: neither a kWh token nor a clear token reads it as theirs
        self.assertFalse(credit_token.verify(key, "TOU-1", raw))
        self.assertFalse(credit_token.verify_clear(key, "TOU-1", raw))
        kwh_token = credit_token.mint(key, "TOU-1", 9, 10_000)
        self.assertFalse(credit_token.verify_money(key, "TOU-1", b"\x03" + kwh_token))
        receipt = purchase._receipt()
        self.assertEqual(receipt["credit_mode"], "money")
        self.assertEqual([b["name"] for b in receipt["bands"]], ["Off-peak", "Peak"])
        self.assertEqual(receipt["bands"][1]["price"], 0.40)

    def test_meter_and_tariff_that_disagree_are_not_sold(self):
        self.env.cr.execute(
            "UPDATE smartpm_meter SET credit_mode = 'kwh' WHERE id = %s", (self.money_meter.id,)
        )
        self.money_meter.invalidate_recordset(["credit_mode"])
        with self.assertRaises(VendingError) as err:
            vend(self.env, self.money_meter, 10.0, "backoffice", "TOU-BAD")
        self.assertEqual(err.exception.code, "meter_not_sellable")
        self.assertFalse(self.Purchase.search([("external_ref", "=", "TOU-BAD")]))

    def test_calendar_is_pushed_with_the_next_version_ahead(self):
        Job = self.env["smartpm.meter.job"]
        first = Job.search(
            [("meter_id", "=", self.money_meter.id), ("job_type", "=", tou.JOB_TYPE)]
        )
        self.assertEqual(len(first), 1)
        payload = first.payload
        self.assertIsNone(payload["passive"])
        self.assertEqual(
            payload["active"]["charges"],
            [{"rate": 1, "charge_per_unit": 1000}, {"rate": 2, "charge_per_unit": 4000}],
        )
        day = payload["active"]["days"][0]["schedule"]
        self.assertEqual(
            day,
            [
                {"start_min": 0, "rate": 1},
                {"start_min": 1020, "rate": 2},
                {"start_min": 1260, "rate": 1},
            ],
        )
        later = fields.Date.today() + timedelta(days=10)
        self._add_version(self.tou_tariff, later, peak=0.50)
        jobs = Job.search(
            [("meter_id", "=", self.money_meter.id), ("job_type", "=", tou.JOB_TYPE)], order="id"
        )
        self.assertEqual(len(jobs), 2)
        self.assertEqual(first.state, "cancelled")  # superseded while pending
        passive = jobs[-1].payload["passive"]
        self.assertEqual(passive["charges"][1], {"rate": 2, "charge_per_unit": 5000})
        self.assertTrue(jobs[-1].payload["activate_at"].startswith(later.isoformat()))
        # the same calendar again pushes nothing
        self.assertFalse(tou.push(self.env, self.money_meter))

    def test_realistic_prices_use_the_charge_tables_scale_and_others_are_refused(self):
        # 25.00 and 12.50 per kWh (a currency of small units): scale -3, 25000 and 12500
        dear = self._tou_tariff(name="Dear TOU", peak=25.0, off=12.5)
        version = dear._tou_version_at(date(2026, 3, 2))
        calendar = tou.version_calendar(version)
        self.assertEqual(calendar["price_scale"], -3)
        self.assertEqual(
            calendar["charges"],
            [{"rate": 1, "charge_per_unit": 12500}, {"rate": 2, "charge_per_unit": 25000}],
        )
        self.assertEqual(tou.version_calendar(self.tou_tariff._tou_version_at())["price_scale"], -4)
        self.assertEqual(tou.price_scale([250.5, 3000.0]), -1)
        peak = version.band_ids.filtered(lambda b: b.rate == 2)
        # beyond 32,767 per kWh: refused naming the tariff and the band; nothing changed
        with self.assertRaisesRegex(ValidationError, "Dear TOU, band Peak.*40000"):
            peak.price_per_kwh = 40000.0
        self.env.invalidate_all(flush=False)  # what the database holds
        self.assertEqual(peak.price_per_kwh, 25.0)
        # 25.0001 needs 4 decimals: 250001 at -4 is beyond a long
        with self.assertRaisesRegex(ValidationError, "Dear TOU, band Peak"):
            peak.price_per_kwh = 25.0001
        self.env.invalidate_all(flush=False)
        # each fits alone, not together: 3.0001 needs -4, 25 needs -3 or more
        with self.assertRaisesRegex(ValidationError, "Dear TOU, prices from.*no scale holds"):
            version.band_ids.filtered(lambda b: b.rate == 1).price_per_kwh = 3.0001
        self.env.invalidate_all(flush=False)
        self.assertEqual(version.band_ids.sorted("rate").mapped("price_per_kwh"), [12.5, 25.0])

    def test_money_meter_emergency_credit_is_set_taken_and_shown_in_money(self):
        from ..services import emergency

        Job = self.env["smartpm.meter.job"]
        self.tou_tariff.write({"emergency_credit_money": 5.0, "emergency_threshold_money": 1.0})
        [push] = Job.search(
            [
                ("meter_id", "=", self.money_meter.id),
                ("job_type", "=", "set_emergency_credit"),
                ("state", "=", "pending"),
            ]
        )
        self.assertEqual(push.payload, {"amount_money": 5.0, "threshold_money": 1.0})
        # compared with the meter's money, not its (empty) kWh figure
        engine.as_engine(self.money_meter).write(
            {"credit_money": 3.0, "credit_kwh": 0.0, "emergency_status": "enabled"}
        )
        with self.assertRaisesRegex(UserError, r"TOU-1 when its credit falls to .*1\.00"):
            emergency.take(self.money_meter, "test")
        self.assertFalse(emergency.pending_take(self.money_meter))
        engine.as_engine(self.money_meter).write(
            {"credit_money": 0.5, "emergency_status": "selectable"}
        )
        self.assertTrue(self.money_meter.emergency_can_take)
        job = emergency.take(self.money_meter, "test")
        self.assertEqual(job.job_type, "take_emergency_credit")
        vals = emergency.values_from_result(
            self.money_meter,
            {"emergency_status": "in_use", "emergency_in_use_money": 5.0, "credit_money": 5.5},
        )
        self.assertEqual(vals, {"emergency_status": "in_use", "emergency_in_use_money": 5.0})

    def test_money_meter_thresholds_are_pushed_in_money(self):
        Job = self.env["smartpm.meter.job"]
        self.tou_tariff.write({"low_credit_money": 2.5, "trip_money": -0.5})
        [job] = Job.search(
            [
                ("meter_id", "=", self.money_meter.id),
                ("job_type", "=", "set_thresholds"),
                ("state", "=", "pending"),
            ]
        )
        self.assertEqual(job.payload, {"low_credit_money": 2.5, "trip_money": -0.5})
        self.assertEqual(
            (self.money_meter.effective_low_credit_kwh, self.money_meter.effective_trip_kwh),
            (2.5, -0.5),
        )
        # its own thresholds, in money too
        self.money_meter.write(
            {"threshold_override": True, "low_credit_money": 4.0, "trip_money": 0.0}
        )
        [job] = Job.search(
            [
                ("meter_id", "=", self.money_meter.id),
                ("job_type", "=", "set_thresholds"),
                ("state", "=", "pending"),
            ]
        )
        self.assertEqual(job.payload, {"low_credit_money": 4.0, "trip_money": 0.0})
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.errors.CheckViolation):
            self.money_meter.write({"low_credit_money": -1.0})  # below the trip threshold
            self.money_meter.flush_recordset()

    def test_cashier_and_operator_cannot_change_bands_or_the_credit_mode(self):
        band = self.tou_tariff.tou_version_ids.band_ids[0]
        for user in (self.cashier, self.operator):
            with self.assertRaises(AccessError):
                band.with_user(user).write({"price_per_kwh": 0.01})
            with self.assertRaises(AccessError):
                self.env["smartpm.tariff.band.rule"].with_user(user).create(
                    {
                        "version_id": band.version_id.id,
                        "band_id": band.id,
                        "start_hour": 0,
                        "end_hour": 1,
                    }
                )
        with self.assertRaises(UserError):
            self.money_meter.with_user(self.operator).write({"credit_mode": "kwh"})
        self.assertEqual(band.price_per_kwh, 0.10)
        self.assertEqual(self.money_meter.credit_mode, "money")

    def test_credit_mode_cannot_change_once_sold(self):
        vend(self.env, self.money_meter, 10.0, "backoffice", "TOU-R2")
        with self.assertRaises(UserError):
            self.money_meter.with_user(self.manager).write(
                {"credit_mode": "kwh", "tariff_id": self.tariff.id}
            )

    def test_credit_mode_cannot_change_with_a_tenant_on_the_meter(self):
        """Nothing sold yet, but a tenant is on the meter: their credit and thresholds are
        in its unit. The switch is refused, naming the meter and the tenant, both ways."""
        switches = [
            (self.money_meter, {"credit_mode": "kwh", "tariff_id": self.tariff.id}),
            (self.meter, {"credit_mode": "money", "tariff_id": self.tou_tariff.id}),
        ]
        for meter, vals in switches:
            mode, tariff = meter.credit_mode, meter.tariff_id
            for env in (self.env, self.env(user=self.manager)):
                with self.assertRaises(UserError) as cm:
                    meter.with_env(env).write(vals)
                message = str(cm.exception)
                self.assertIn(meter.serial_number, message)
                self.assertIn(meter.tenant_id.name, message)
                self.assertIn("move the tenant out first", message)
                self.assertEqual((meter.credit_mode, meter.tariff_id), (mode, tariff))
        # the tenant moved out: the Manager switches the meter
        self.money_meter.tenant_id = False
        self.money_meter.with_user(self.manager).write(
            {"credit_mode": "kwh", "tariff_id": self.tariff.id}
        )
        self.assertEqual(self.money_meter.credit_mode, "kwh")


@tagged("post_install", "-at_install")
class TestTouRecognition(TouMixin, PrepaymentCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou_tariff = cls._tou_tariff()
        cls.tou_tenant = cls.env["res.partner"].create({"name": "Abena TOU", "is_tenant": True})
        cls.tou_meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "PRE-TOU",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.tou_tenant.id,
                "tariff_id": cls.tou_tariff.id,
                "credit_mode": "money",
                "company_id": cls.company.id,
            }
        )

    def _money_sale(self, amount, ref, charge_total):
        purchase = vend(self.env, self.tou_meter, amount, "backoffice", ref)
        purchase._create_invoice_and_payment(self.cash)
        purchase._on_delivered({"credit_money": amount, "charge_total": charge_total})
        engine.as_engine(purchase).date_delivered = datetime(2026, 2, 28)
        return purchase

    def _charge_reading(self, when, milli):
        self.env["smartpm.reading"].sudo().create(
            {
                "meter_id": self.tou_meter.id,
                "obis": tou.CHARGE_OBIS,
                "reading_time": when,
                "value": milli,
            }
        )

    def test_money_consumed_is_recognised_once_and_never_beyond_the_credit(self):
        first = self._money_sale(10.0, "M1", charge_total=2.5)  # the meter had charged 2.5
        second = self._money_sale(5.0, "M2", charge_total=2.5)
        self._charge_reading(datetime(2026, 3, 10), 2500 + 4_250)  # 4.25 consumed
        move = prepayment.recognise(self.company, date(2026, 3, 11))
        self.assertAlmostEqual(move.amount_total, 4.25)
        self.assertAlmostEqual(first.money_remaining, 5.75)
        self.assertAlmostEqual(second.money_remaining, 5.0)
        # twice: nothing more
        self.assertFalse(prepayment.recognise(self.company, date(2026, 3, 11)))
        # consumption beyond all the credit sold (negative credit): each sale released once,
        # the rest waits for the sale that repays it
        self._charge_reading(datetime(2026, 3, 20), 2500 + 16_000)
        move = prepayment.recognise(self.company, date(2026, 3, 21))
        self.assertAlmostEqual(move.amount_total, 10.75)
        self.assertEqual((first.money_remaining, second.money_remaining), (0.0, 0.0))
        rows = self.env["smartpm.credit.recognition"].search([("meter_id", "=", self.tou_meter.id)])
        self.assertAlmostEqual(sum(rows.mapped("money")), 15.0)
        self.assertAlmostEqual(sum(rows.mapped("amount")), 15.0)
        third = self._money_sale(5.0, "M2b", charge_total=2.5)
        engine.as_engine(third).date_delivered = datetime(2026, 3, 21)
        move = prepayment.recognise(self.company, date(2026, 3, 22))
        self.assertAlmostEqual(move.amount_total, 1.0)  # the negative credit it repaid
        self.assertAlmostEqual(third.money_remaining, 4.0)
        self.assertFalse(prepayment.recognise(self.company, date(2026, 3, 22)))
        rows = self.env["smartpm.credit.recognition"].search([("meter_id", "=", self.tou_meter.id)])
        self.assertAlmostEqual(sum(rows.mapped("money")), 16.0)
        liability = sum(
            self.env["account.move.line"]
            .search(
                [("account_id", "=", self.liability.id), ("partner_id", "=", self.tou_tenant.id)]
            )
            .mapped("balance")
        )
        self.assertAlmostEqual(liability, -4.0)  # what the meter holds: 20 sold, 16 consumed

    def test_the_statement_shows_consumption_per_band(self):
        from ..services.statement import tenant_statement

        self._money_sale(10.0, "M3", charge_total=0.0)
        Reading = self.env["smartpm.reading"].sudo()
        now = fields.Datetime.now()
        today = fields.Date.context_today(self.tou_meter)
        # the meter's rate registers read the day before the period and during it
        for when, off, peak in ((now - timedelta(days=2), 1_000, 0), (now, 21_000, 4_000)):
            for rate, wh in ((1, off), (2, peak)):
                Reading.create(
                    {
                        "meter_id": self.tou_meter.id,
                        "obis": tou.ENERGY_RATE_OBIS % rate,
                        "reading_time": when,
                        "value": wh,
                    }
                )
        statement = tenant_statement(
            self.env, self.tou_tenant, today - timedelta(days=1), today + timedelta(days=1)
        )
        section = next(s for s in statement["meters"] if s["meter"] == self.tou_meter)
        bands = [(b["name"], b["kwh"], b["price"], b["amount"]) for b in section["bands"]]
        self.assertEqual(bands, [("Off-peak", 20.0, 0.10, 2.0), ("Peak", 4.0, 0.40, 1.6)])
        html = self.env["ir.qweb"]._render(
            "smartpm_prepay.statement_body", {"statement": statement}
        )
        self.assertIn("Consumption by price band", str(html))


@tagged("post_install", "-at_install")
class TestTouBank(TouMixin, VendingCase):
    def test_bank_quote_and_receipt_show_the_bands(self):
        from ..controllers import soap
        from ..services import bank_api

        tariff = self._tou_tariff()
        tenant = self._tenant("Kwame TOU")
        meter = self._meter(
            "TOU-BANK",
            tenant_id=tenant.id,
            state="active",
            credit_mode="money",
            tariff_id=tariff.id,
        )
        purchase = vend(self.env, meter, 12.0, "backoffice", "TOU-BANK-1")
        receipt = bank_api.receipt(purchase)
        self.assertEqual(receipt["creditMoney"], "12.00")
        self.assertIn("Peak (every day 17:00-21:00) 0.4000 per kWh", receipt["priceBands"])
        xml = soap.render_response("QueryPurchase", receipt).decode()
        self.assertIn("<tns:creditMoney>12.00</tns:creditMoney>", xml)
        # a kWh sale's answer is as before
        kwh_receipt = bank_api.receipt(vend(self.env, self.meter, 10.0, "backoffice", "KWH-B"))
        self.assertNotIn("creditMoney", kwh_receipt)
        self.assertNotIn("creditMoney", soap.render_response("QueryPurchase", kwh_receipt).decode())
