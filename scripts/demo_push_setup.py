# Run inside `odoo-bin shell` by scripts/demo.sh, after each start of the simulator: a
# simulated meter remembers nothing between runs (a real one keeps its settings), so Odoo
# sends every meter in push mode its push setup again (a set_push job, run by the demo's
# bridge; a pending older one is superseded). Prints `PUSH_METERS=<serials>`.
meters = env["smartpm.meter"].sudo().search([("push_enabled", "=", True)])
meters._push_push_setup()
env.cr.commit()
print(f"PUSH_METERS={','.join(meters.mapped('serial_number'))}")
