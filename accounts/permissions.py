"""Per-object permissions (MLflow's READ / EDIT / MANAGE / NO_PERMISSIONS), on top of the roles.

A grant names a user, an object (an experiment or a registered model) and a level; a user with
no grant on an object has `settings.DEFAULT_PERMISSION`. Roles still bound what a level allows:
an admin (or superuser) manages everything, a viewer never gets past READ, a user without a role
gets nothing. The grant tables live in the apps that own the objects (tracker, registry); this
module only knows their shape: a `user` foreign key, a `level` column and a `TARGET_FIELD`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q

from audit.services import record_event
from config.db import array_literal, prepared_cursor
from config.exceptions import AlreadyExists, InvalidInput, NotFound, PermissionDenied, Unauthenticated

from .roles import Role, role_of


class Level(IntEnum):
    """Ordered, so "at least EDIT" is a comparison; MANAGE = edit, delete and grant."""

    NO_PERMISSIONS = 0
    READ = 1
    EDIT = 2
    MANAGE = 3


LEVEL_NAMES = tuple(level.name for level in Level)
LEVEL_CHOICES = [(level.value, level.name) for level in Level]


def parse_level(value: Any, *, field: str = "permission") -> Level:
    """A level from its MLflow name (`READ`), refusing anything else with the field named."""
    if isinstance(value, str) and value.upper() in Level.__members__:
        return Level[value.upper()]
    raise InvalidInput(f"{value!r} is not one of {', '.join(LEVEL_NAMES)}", field=field)


def default_level() -> Level:
    """What a user without a grant may do; read per call so tests can override the setting."""
    name = getattr(settings, "DEFAULT_PERMISSION", "READ")
    if name not in Level.__members__:
        raise ImproperlyConfigured(f"DEFAULT_PERMISSION={name!r} must be one of {', '.join(LEVEL_NAMES)}.")
    return Level[name]


def default_level_for(model: type[models.Model], pk: Any) -> Level:
    """What a user without a grant holds on one object: the server's default, raised for an
    object its model keeps open to everyone (`permission_defaults`: the Default experiment)."""
    general = default_level()
    raised = _raised_defaults(model).get(pk)
    return max(general, raised) if raised is not None else general


def _raised_defaults(model: Any) -> dict[Any, Level]:
    hook = getattr(model, "permission_defaults", None)
    return hook() if hook is not None else {}


def _capped(user: Any, level: Level) -> Level:
    role = role_of(user)
    if role is Role.NONE:
        return Level.NO_PERMISSIONS
    if role >= Role.ADMIN:
        return Level.MANAGE
    if role is Role.VIEWER:
        return min(level, Level.READ)
    return level


def _cache(user: Any) -> dict[tuple[str, int], Level]:
    cache = getattr(user, "_labledger_levels", None)
    if cache is None:
        cache = {}
        user._labledger_levels = cache
    return cache


def forget_levels(user: Any) -> None:
    """Drop the levels cached on this user object (after a grant changed them)."""
    if hasattr(user, "_labledger_levels"):
        del user._labledger_levels


def level_of(user: Any, obj: models.Model) -> Level:
    """The user's effective level on `obj`: its grant or the default, bounded by the user's role."""
    return levels_of(user, type(obj), [obj.pk])[obj.pk]


def levels_of(user: Any, model: type[models.Model], pks: Sequence[Any]) -> dict[Any, Level]:
    """Effective levels on several objects of one kind, in one query (none for what this
    request's user object has already looked up, and none for admins)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return dict.fromkeys(pks, Level.NO_PERMISSIONS)
    role = role_of(user)
    if role is Role.NONE or role >= Role.ADMIN:
        return dict.fromkeys(pks, _capped(user, Level.NO_PERMISSIONS))
    label = model._meta.label_lower
    cache = _cache(user)
    missing = [pk for pk in pks if (label, pk) not in cache]
    if missing:
        grant_model = model.permission_grant_model()  # type: ignore[attr-defined]
        target_id = f"{grant_model.TARGET_FIELD}_id"
        granted = dict(
            grant_model.objects.filter(user=user, **{f"{target_id}__in": missing}).values_list(
                target_id, "level"
            )
        )
        for pk in missing:
            remember_grant(user, model, pk, granted.get(pk))
    return {pk: _capped(user, cache[(label, pk)]) for pk in pks}


@lru_cache(maxsize=64)
def _with_grant_sql(model: type[models.Model], where: str) -> tuple[str, tuple[str, ...]]:
    grant_model = model.permission_grant_model()  # type: ignore[attr-defined]
    concrete = model._meta.concrete_fields
    fields = tuple(field.attname for field in concrete)
    sql = (
        f"SELECT {', '.join(f'o.{field.column}' for field in concrete)}, "
        f"(SELECT level FROM {grant_model._meta.db_table} "
        f"WHERE {grant_model.TARGET_FIELD}_id = o.{model._meta.pk.column} AND user_id = %s) "
        f"FROM {model._meta.db_table} o WHERE {where}"
    )
    return sql, fields


def get_with_grant(model: type[models.Model], user: Any, *, where: str, params: Sequence[Any]) -> Any | None:
    """The one row of `model` that `where` (fixed SQL over alias `o`) finds, or None, with the
    user's grant on it read by the same prepared statement: a single-object read that is then
    checked costs one round trip and no ORM compilation, not two queries."""
    sql, fields = _with_grant_sql(model, where)
    user_id = user.pk if getattr(user, "is_authenticated", False) else None
    with prepared_cursor() as cursor:
        cursor.execute(sql, [user_id, *params])
        row = cursor.fetchone()
    if row is None:
        return None
    found = model.from_db(connection.alias, fields, row[:-1])
    if user_id is not None:
        remember_grant(user, model, found.pk, row[-1])
    return found


def remember_grant(user: Any, model: type[models.Model], pk: Any, granted: int | None) -> None:
    """Note the user's grant on one object (None: no grant, so the default applies), read by a
    query that had another purpose, so the permission check that follows asks nothing more."""
    if getattr(user, "is_authenticated", False):
        level = Level(granted) if granted is not None else default_level_for(model, pk)
        _cache(user)[(model._meta.label_lower, pk)] = level


def require_level(user: Any, obj: models.Model, level: Level, *, action: str, named: str = "") -> None:
    """Raise unless the user holds at least `level` on `obj`; `action` ends up in the message.

    The refusal goes to someone who may not read `obj`, so it names it only by what they gave or
    may know: its kind and id, or `named` (a registered model by the name the caller typed) —
    never its name when they reached it through something else (a run, an upload, a request),
    since ids are sequential and every name could be listed by trying them one after another."""
    if user is None or not getattr(user, "is_authenticated", False):
        raise Unauthenticated("Authentication required.")
    if role_of(user) < Role.VIEWER:
        raise PermissionDenied(f"{action} needs the viewer role.")
    if level > Level.READ and role_of(user) < Role.CONTRIBUTOR:
        raise PermissionDenied(f"{action} needs the contributor role.")
    held = level_of(user, obj)
    if held < level:
        shown = named or f"{obj._meta.verbose_name} {obj.pk}"
        raise PermissionDenied(f"{action} needs {level.name} permission on {shown}; you have {held.name}.")


def role_needed(level: Level) -> Role:
    """The least role that may hold `level` on anything: viewers read, contributors write."""
    return Role.VIEWER if level <= Level.READ else Role.CONTRIBUTOR


@lru_cache(maxsize=16)
def level_guard_sql(
    model: type[models.Model], *, target: str, prefix: str = "guard_", caller: bool = False
) -> str:
    """A SQL condition, true exactly where `require_level` would let the user of
    `level_guard_params` act on the `model` object whose primary key is the SQL expression
    `target` (qualified by its table's alias: the condition reads the grant table as `g`): for a
    write that finds its object and checks the actor in the statement that
    changes it (one round trip, not a lookup and then the write). Fixed text with named
    parameters, so it can be prepared; the rule itself stays in `level_guard_params`.

    `caller`: the user is the row of the statement's `caller` CTE (accounts.callers), which must
    be in scope, rather than parameters; the parameters are then `object_guard_params`, and the
    caller's role is checked by the CTE itself (`role_needed`)."""
    grant_model = model.permission_grant_model()  # type: ignore[attr-defined]
    admin, user = ("caller.admin", "caller.id") if caller else (f"%({prefix}any)s", f"%({prefix}user)s")
    return (
        f"({admin} OR COALESCE("
        f"(SELECT g.level >= %({prefix}level)s FROM {grant_model._meta.db_table} g "
        f"WHERE g.{grant_model.TARGET_FIELD}_id = {target} AND g.user_id = {user}), "
        f"%({prefix}default)s OR {target} = ANY(%({prefix}open)s::bigint[])))"
    )


def level_guard_params(
    user: Any, model: type[models.Model], level: Level, *, prefix: str = "guard_"
) -> dict[str, Any] | None:
    """The parameters of `level_guard_sql` for `user` needing `level`, worked out from the same
    role, grant and default rules as `require_level`; None where the role alone refuses (the
    caller then takes its checked path, whose refusal says why)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    role = role_of(user)
    if role < role_needed(level):
        return None
    # A viewer's levels are capped at READ, which the line above leaves only for level <= READ,
    # where the cap changes nothing; an admin holds MANAGE on everything.
    return {
        f"{prefix}any": role >= Role.ADMIN,
        f"{prefix}user": user.pk,
        **object_guard_params(model, level, prefix=prefix),
    }


def object_guard_params(model: type[models.Model], level: Level, *, prefix: str = "guard_") -> dict[str, Any]:
    """The parameters of `level_guard_sql` that do not depend on the user: the level needed and
    whether the defaults (the server's, or an object's raised one) grant it."""
    general = default_level()
    return {
        f"{prefix}level": int(level),
        f"{prefix}default": general >= level,
        # As text, which the condition casts (`::bigint[]`): psycopg works out a new array dumper
        # for every list it sends, 2 % of a single write's instructions.
        f"{prefix}open": array_literal(
            pk for pk, raised in _raised_defaults(model).items() if max(general, raised) >= level
        ),
    }


class _SystemReader:
    """Who reads for the system itself (management commands, the demo, tests of the readers):
    named explicitly, so a view cannot reach an unfiltered list by forgetting the user."""

    is_authenticated = False
    username = "system"

    def __repr__(self) -> str:
        return "SYSTEM_READER"


SYSTEM_READER: Any = _SystemReader()


def require_readable(user: Any, obj: models.Model, *, action: str, named: str = "") -> None:
    """Refuse (403, as MLflow does) unless the user may read `obj`; SYSTEM_READER reads all.

    The single-object selectors call this, so opening one object by id or name on any path is
    checked the way lists filter. `named`: as in `require_level`."""
    if user is SYSTEM_READER:
        return
    require_level(user, obj, Level.READ, action=action, named=named)


def reads_everything(user: Any) -> bool:
    return user is SYSTEM_READER or role_of(user) >= Role.ADMIN


def closes_any(user: Any, grant_model: type[models.Model]) -> bool:
    """Whether some object of the grant's kind is closed to `user`: by a default below READ, or
    by a grant (one small query at most)."""
    if reads_everything(user):
        return False
    if default_level() < Level.READ:
        return True
    return grant_model.objects.filter(user=user, level__lt=Level.READ).exists()  # type: ignore[attr-defined]


def readable_q(user: Any, grant_model: type[models.Model], *, path: str = "pk") -> Q:
    """A filter keeping the objects (reached through `path`) that the user may read.

    With a default of READ or more, that is everything the user holds no NO_PERMISSIONS grant
    on; with a default of NO_PERMISSIONS, only what a grant opens, and the few objects whose own
    default is READ or more (`default_level_for`) unless a grant closes them.
    """
    if reads_everything(user):
        return Q()
    if role_of(user) is Role.NONE:
        return Q(pk__in=[])
    target = grant_model.TARGET_FIELD  # type: ignore[attr-defined]
    grants = grant_model.objects.filter(user=user, **{target: OuterRef(path)})  # type: ignore[attr-defined]
    closed, opened = (
        Q(Exists(grants.filter(level__lt=Level.READ))),
        Q(Exists(grants.filter(level__gte=Level.READ))),
    )
    if default_level() >= Level.READ:
        return ~closed
    target_model = grant_model._meta.get_field(target).related_model
    open_by_default = [pk for pk, level in _raised_defaults(target_model).items() if level >= Level.READ]
    if open_by_default:
        return opened | (Q(**{f"{path}__in": open_by_default}) & ~closed)
    return opened


class PermissionGrant(models.Model):
    """One user's level on one object; the concrete tables add the object's foreign key."""

    TARGET_FIELD = ""  # the foreign key to the object
    AUDIT_PREFIX = ""  # how audit actions name the object: `<prefix>.permission_set`

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(choices=LEVEL_CHOICES)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def level_name(self) -> str:
        return Level(self.level).name


def _grant_model(obj: models.Model) -> Any:
    return obj.permission_grant_model()  # type: ignore[attr-defined]


def list_grants(*, obj: models.Model) -> models.QuerySet[Any]:
    """Every grant on `obj`, by user name, with the users fetched alongside."""
    grant_model = _grant_model(obj)
    return (
        grant_model.objects.filter(**{grant_model.TARGET_FIELD: obj})
        .select_related("user")
        .order_by("user__username")
    )


def get_grant(*, obj: models.Model, user: Any) -> Any:
    """The grant `user` holds on `obj`; a missing one is a 404 naming the user."""
    grant = list_grants(obj=obj).filter(user=user).first()
    if grant is None:
        raise NotFound(f"{user} holds no permission on {obj._meta.verbose_name} {obj}", field="username")
    return grant


def grant_creator(*, actor: Any, obj: models.Model) -> None:
    """The creator of an object manages it; its creation event (by `actor`) records that."""
    if getattr(actor, "pk", None) is not None:
        grant_model = _grant_model(obj)
        grant_model.objects.create(user=actor, level=int(Level.MANAGE), **{grant_model.TARGET_FIELD: obj})
        forget_levels(actor)


def set_grant(
    *, actor: Any, obj: models.Model, user: Any, level: Level, action: str, only: str = "", named: str = ""
) -> Any:
    """Give `user` exactly `level` on `obj`, audited; needs MANAGE on `obj`.

    `only="create"` refuses a user who holds a grant already, `only="update"` one who holds
    none (MLflow's create and update calls); by default either is fine. `named`: as in
    `require_level`.
    """
    require_level(actor, obj, Level.MANAGE, action=action, named=named)
    if not getattr(user, "is_active", False):
        raise InvalidInput(f"user {user} is not active", field="username")
    grant_model = _grant_model(obj)
    target = {grant_model.TARGET_FIELD: obj}
    with transaction.atomic():
        existing = grant_model.objects.select_for_update().filter(user=user, **target).first()
        kind = obj._meta.verbose_name
        if only == "create" and existing is not None:
            raise AlreadyExists(
                f"{user} already holds {existing.level_name} on {kind} {obj}", field="username"
            )
        if only == "update" and existing is None:
            raise NotFound(f"{user} holds no permission on {kind} {obj}", field="username")
        before = {"username": user.username, "permission": existing.level_name} if existing else None
        if existing is not None and existing.level == level:
            return existing
        grant, _ = grant_model.objects.update_or_create(user=user, **target, defaults={"level": int(level)})
        record_event(
            actor=actor,
            action=f"{grant_model.AUDIT_PREFIX}.permission_set",
            target=obj,
            before=before,
            after={"username": user.username, "permission": level.name},
        )
    forget_levels(user)
    return grant


def delete_grant(*, actor: Any, obj: models.Model, user: Any, action: str, named: str = "") -> None:
    """Remove `user`'s grant on `obj` (they fall back to the default), audited; needs MANAGE.
    `named`: as in `require_level`."""
    require_level(actor, obj, Level.MANAGE, action=action, named=named)
    with transaction.atomic():
        grant = get_grant(obj=obj, user=user)
        before = {"username": user.username, "permission": grant.level_name}
        grant.delete()
        record_event(
            actor=actor, action=f"{obj._meta.model_name}.permission_deleted", target=obj, before=before
        )
    forget_levels(user)


def get_grantee(*, username: Any, field: str = "username") -> Any:
    """The user a grant is for, by user name; an unknown name is a 404 naming the field."""
    if not isinstance(username, str) or not username:
        raise InvalidInput("must be a user name", field=field)
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"no user named {username!r}", field=field)
    return user


@dataclass(frozen=True)
class GrantKind:
    """One kind of object that carries grants (experiments, registered models), as adapters reach
    its permission services: the native API, the MLflow API and the dashboard each serve every
    kind through one implementation, while the rules (who may read or grant, the action named in
    a refusal) stay in the kind's own services. `keyword` is the services' name for the object.
    """

    keyword: str
    list_service: Callable[..., Any]
    get_service: Callable[..., Any]
    set_service: Callable[..., Any]
    delete_service: Callable[..., None]

    def list(self, *, user: Any, obj: models.Model) -> Any:
        return self.list_service(user=user, **{self.keyword: obj})

    def get(self, *, user: Any, obj: models.Model, grantee: Any) -> Any:
        return self.get_service(user=user, grantee=grantee, **{self.keyword: obj})

    def set(self, *, actor: Any, obj: models.Model, grantee: Any, level: Level, only: str = "") -> Any:
        return self.set_service(actor=actor, grantee=grantee, level=level, only=only, **{self.keyword: obj})

    def delete(self, *, actor: Any, obj: models.Model, grantee: Any) -> None:
        self.delete_service(actor=actor, grantee=grantee, **{self.keyword: obj})
