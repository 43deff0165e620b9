// storage/aliases.cc — alias validation, the Catalog's alias writes (writer thread), and
// the Queries that list them (see aliases.h).
#include "storage/aliases.h"

#include <ctime>

#include "storage/json_lite.h"
#include "storage/keys.h"
#include "storage/model_pattern.h"
#include "storage/queries.h"

namespace rw {

bool alias_models_parse(const std::string& models_json, std::vector<std::string>& models,
                        std::string& error) {
    models.clear();
    if (!json_parse_string_array(models_json, models, error)) {
        return false;
    }
    if (models.empty() || models.size() > alias_models_max) {
        error = "must list 1.." + std::to_string(alias_models_max) + " models";
        return false;
    }
    for (size_t i = 0; i < models.size(); i++) {
        std::string why = model_pattern_check(models[i], alias_name_bytes_max);
        if (why.empty() && models[i].ends_with('*')) {
            why = "must be a concrete model, not a pattern";
        }
        for (size_t j = 0; j < i && why.empty(); j++) {
            why = models[j] == models[i] ? "is listed twice" : "";
        }
        if (!why.empty()) {
            error = model_pattern_why(models[i], why);
            return false;
        }
    }
    return true;
}

std::string alias_spec_check(const AliasSpec& spec) {
    std::string why = model_pattern_check(spec.name, alias_name_bytes_max);
    if (why.empty() && spec.name.ends_with('*')) {
        why = "must not be a pattern";
    }
    if (!why.empty()) {
        return "name " + why;
    }
    std::vector<std::string> models;
    std::string error;
    if (!alias_models_parse(spec.models_json, models, error)) {
        return "models: " + error;
    }
    for (const std::string& model : models) {
        if (model == spec.name) {
            return "models: an alias cannot stand for itself";
        }
    }
    return {};
}

// ---- Writes (run on the writer thread) -------------------------------------------------

namespace {

struct AliasWrite {
    const AliasSpec* spec;
    int64_t id;  // In: update/delete target. Out: inserted id.
};

// "alias already exists" for a UNIQUE name clash (the admin API's 409).
bool alias_step(Db& db, Stmt& stmt, int64_t id, std::string& error) {
    if (!db.step_done(stmt)) {
        if (db.last_error_kind() == DbErrorKind::constraint) {
            error = "alias already exists";
        }
        return false;
    }
    if (id != 0 && db.changes() == 0) {
        error = "no alias with id " + std::to_string(id);
        return false;
    }
    return true;
}

bool alias_insert(Db& db, void* context, std::string& error) {
    AliasWrite& write = *static_cast<AliasWrite*>(context);
    Stmt stmt;
    if (!db.prepare("INSERT INTO aliases (name, models, created_at, updated_at)"
                    " VALUES (?1, ?2, ?3, ?3) RETURNING id",
                    stmt)) {
        return false;
    }
    stmt.bind_text(1, write.spec->name);
    stmt.bind_text(2, write.spec->models_json);
    stmt.bind_int64(3, int64_t(std::time(nullptr)));
    // RETURNING id: SQLite 3.35+ and PostgreSQL alike (no rowid call only one of them has).
    if (stmt.step() != StepStatus::row) {
        if (db.last_error_kind() == DbErrorKind::constraint) {
            error = "alias already exists";
        }
        return false;
    }
    write.id = stmt.column_int64(0);
    stmt.reset();
    return true;
}

bool alias_update(Db& db, void* context, std::string& error) {
    AliasWrite& write = *static_cast<AliasWrite*>(context);
    Stmt stmt;
    if (!db.prepare("UPDATE aliases SET name = ?2, models = ?3, updated_at = ?4 WHERE id = ?1",
                    stmt)) {
        return false;
    }
    stmt.bind_int64(1, write.id);
    stmt.bind_text(2, write.spec->name);
    stmt.bind_text(3, write.spec->models_json);
    stmt.bind_int64(4, int64_t(std::time(nullptr)));
    return alias_step(db, stmt, write.id, error);
}

bool alias_delete(Db& db, void* context, std::string& error) {
    AliasWrite& write = *static_cast<AliasWrite*>(context);
    Stmt stmt;
    if (!db.prepare("DELETE FROM aliases WHERE id = ?1", stmt)) {
        return false;
    }
    stmt.bind_int64(1, write.id);
    return alias_step(db, stmt, write.id, error);
}

}  // namespace

Result<int64_t> Catalog::create_alias(const AliasSpec& spec) {
    std::string error = alias_spec_check(spec);
    if (!error.empty()) {
        return Result<int64_t>::failure(error);
    }
    AliasWrite write{&spec, 0};
    if (!write_and_reload(alias_insert, &write, error)) {
        return Result<int64_t>::failure(error);
    }
    return Result<int64_t>::success(write.id);
}

bool Catalog::update_alias(int64_t id, const AliasSpec& spec, std::string& error) {
    error = alias_spec_check(spec);
    if (!error.empty()) {
        return false;
    }
    AliasWrite write{&spec, id};
    return write_and_reload(alias_update, &write, error);
}

bool Catalog::delete_alias(int64_t id, std::string& error) {
    AliasWrite write{nullptr, id};
    return write_and_reload(alias_delete, &write, error);
}

// ---- Reads -----------------------------------------------------------------------------

Result<std::vector<AliasInfo>> Queries::list_aliases(int64_t id) {
    using R = Result<std::vector<AliasInfo>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare("SELECT id, name, models, created_at, updated_at FROM aliases"
                     " WHERE (?1 = 0 OR id = ?1) ORDER BY name",
                     stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, id);
    std::vector<AliasInfo> rows;
    for (;;) {
        const StepStatus status = stmt.step();
        if (status == StepStatus::error) {
            return R::failure(db_.last_error());
        }
        if (status == StepStatus::done) {
            break;
        }
        rows.push_back({stmt.column_int64(0), std::string(stmt.column_text(1)),
                        std::string(stmt.column_text(2)), stmt.column_int64(3),
                        stmt.column_int64(4)});
    }
    if (id != 0 && rows.empty()) {
        return R::failure("no alias with id " + std::to_string(id));
    }
    return R::success(std::move(rows));
}

}  // namespace rw
