# Server-wide test helper (loaded with --load, never installed): see __init__.py.
{
    "name": "SmartPM e2e probe",
    "version": "18.0.1.0.0",
    "license": "LGPL-3",
    "depends": ["base"],
    "installable": False,
}
