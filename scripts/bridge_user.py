# Run inside `odoo-bin shell`: makes sure a Bridge API user exists and prints a fresh API key
# for it as `API_KEY=<key>`. Login from $SMARTPM_BRIDGE_LOGIN (default "bridge").
import os

login = os.environ.get("SMARTPM_BRIDGE_LOGIN", "bridge")
Users = env["res.users"].sudo().with_context(active_test=False)
user = Users.search([("login", "=", login)], limit=1)
groups = [env.ref("base.group_user").id, env.ref("smartpm_prepay.group_bridge_api").id]
if not user:
    user = Users.create(
        {"name": f"Meter bridge ({login})", "login": login, "groups_id": [(6, 0, groups)]}
    )
user.write({"active": True, "groups_id": [(4, g) for g in groups]})
apikeys = env["res.users.apikeys"].with_user(user).sudo()
key = apikeys._generate(None, f"meter_bridge {login}", None)
env.cr.commit()
print(f"API_KEY={key}")
