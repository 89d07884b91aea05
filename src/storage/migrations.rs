//! Migrations, embedded in the binary from `migrations/{sqlite,postgres}/` and applied by
//! sqlx's migrator (at start and by `oidc-bridge migrate`).

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

macro_rules! migrations {
    ($dir:literal: $(($version:literal, $name:literal)),* $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($name),
            MigrationType::Simple,
            Cow::Borrowed(include_str!(concat!("../../migrations/", $dir, "/", $version, "_", $name, ".sql"))),
            false,
        )),*]
    };
}

pub fn sqlite() -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            migrations!("sqlite": (1, "foundation"), (2, "interactive"), (3, "identities"), (4, "hardening"), (5, "operations"), (6, "purge_indexes"), (7, "agents")),
        ),
        ..Migrator::DEFAULT
    }
}

pub fn postgres() -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            migrations!("postgres": (1, "foundation"), (2, "interactive"), (3, "identities"), (4, "hardening"), (5, "operations"), (6, "purge_indexes"), (7, "agents")),
        ),
        ..Migrator::DEFAULT
    }
}
