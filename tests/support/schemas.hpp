// A schema that uses every declarable feature, shared by the schema tests.
#pragma once

namespace cafdb::test {

/// users (mixin, unique email, check), teams (autoincrement key), memberships
/// (composite key, two foreign keys, cascade), posts (declared before the table it
/// references, index, defaults of each kind, json, blob, boolean, double).
inline constexpr const char* full_schema_json = R"json({
  "tables": [
    {"name": "posts",
     "columns": [
       {"name": "id", "type": "bigint", "primary_key": true, "autoincrement": true},
       {"name": "author", "type": "uuid", "nullable": false,
        "references": "users", "on_delete": "cascade"},
       {"name": "title", "type": "varchar(200)", "nullable": false},
       {"name": "body", "type": "text"},
       {"name": "draft", "type": "boolean", "nullable": false, "default": true},
       {"name": "score", "type": "double", "default": 0},
       {"name": "meta", "type": "json"},
       {"name": "cover", "type": "blob"},
       {"name": "published", "type": "timestamp"}
     ],
     "indexes": [{"columns": ["author", "published"]}]},
    {"name": "users", "mixin": true,
     "columns": [
       {"name": "email", "type": "varchar", "length": 255, "nullable": false, "unique": true},
       {"name": "age", "type": "integer", "check": "age >= 0"},
       {"name": "status", "type": "text", "nullable": false, "default": "new"}
     ]},
    {"name": "teams",
     "columns": [
       {"name": "id", "type": "bigint", "primary_key": true, "autoincrement": true},
       {"name": "name", "type": "text", "nullable": false}
     ],
     "unique": [["name", "id"]]},
    {"name": "memberships",
     "columns": [
       {"name": "user_id", "type": "uuid", "references": "users.pkid", "on_delete": "cascade"},
       {"name": "team_id", "type": "bigint", "references": "teams", "on_delete": "restrict"},
       {"name": "role", "type": "text", "nullable": false, "default": "member"}
     ],
     "primary_key": ["user_id", "team_id"],
     "checks": ["role IN ('member', 'admin')"]}
  ]
})json";

} // namespace cafdb::test
