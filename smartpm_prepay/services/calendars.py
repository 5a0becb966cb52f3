"""The two calendars a meter holds, pushed together: the friendly (non-disconnect) schedule
(services/friendly) and, on a money-mode meter, the tariff's activity calendar with the public
holidays as special days (services/tou). Both compare with the meter's last pushed payload:
a change reaches each meter once, and a call that changes nothing queues nothing."""

from . import friendly, tou


def push(env, meters, force=False):
    """Both calendars of ``meters`` where they differ from the last pushed (all with ``force``)."""
    friendly.push(env, meters, force=force)
    tou.push(env, meters, force=force)


def push_companies(env, companies):
    """The friendly settings, calendar or public holidays of ``companies`` changed: the
    meters of these companies get what changed for them."""
    friendly.push_companies(env, companies)
    tou.push_companies(env, companies)
