from odoo import api, fields, models


class SmartpmSoapNonce(models.Model):
    """A WS-Security PasswordDigest nonce already accepted from a Bank API user, kept until
    a token that old is refused anyway (services/wsse.py): a replay is refused, and the
    unique index refuses two requests that send the same nonce at once."""

    _name = "smartpm.soap.nonce"
    _description = "Bank SOAP nonce"
    _log_access = False
    _order = "created desc"

    user_id = fields.Many2one(
        "res.users",
        string="Bank API user",
        required=True,
        ondelete="cascade",
        readonly=True,
        help="The user whose PasswordDigest carried this nonce.",
    )
    nonce_hash = fields.Char(
        required=True,
        readonly=True,
        help="SHA-256 of the nonce (the nonce itself is not kept).",
    )
    created = fields.Datetime(
        readonly=True, required=True, help="The UsernameToken's Created time."
    )
    forget_at = fields.Datetime(
        readonly=True,
        required=True,
        index=True,
        help="After this a token created that early is refused as too old: the nonce can go.",
    )

    _sql_constraints = [
        (
            "user_nonce_uniq",
            "unique(user_id, nonce_hash)",
            "This nonce was already used by this user.",
        ),
    ]

    @api.autovacuum
    def _gc_expired_nonces(self):
        """Daily: forget the nonces whose tokens are refused as too old anyway."""
        self.env.cr.execute(
            "DELETE FROM smartpm_soap_nonce WHERE forget_at < (now() at time zone 'utc')"
        )
