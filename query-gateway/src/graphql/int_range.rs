//! GraphQL's `Int` is a signed 32-bit integer: a literal or variable outside that range is a
//! request error, refused at validation like any other value of the wrong type. async-graphql
//! checks the range only when a resolver reads the argument, as a field error; this check runs
//! before execution, over the document, its variables and the schema's argument types.

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    ExecutableDocument, OperationType, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{Name, ServerError, Variables};
use async_graphql_value::ConstValue;

/// The first `Int` out of range in `doc` (arguments written in it, and the variables given),
/// as a validation error at its place.
pub(crate) fn check(
    doc: &ExecutableDocument,
    variables: &Variables,
    registry: &Registry,
) -> Option<ServerError> {
    for (_, operation) in doc.operations.iter() {
        let operation = &operation.node;
        for definition in &operation.variable_definitions {
            if let Some(error) = check_variable(definition, variables, registry) {
                return Some(error);
            }
        }
        let root = match operation.ty {
            OperationType::Query => Some(registry.query_type.as_str()),
            OperationType::Mutation => registry.mutation_type.as_deref(),
            OperationType::Subscription => registry.subscription_type.as_deref(),
        };
        if let Some(root) = root
            && let Some(error) = check_set(
                doc,
                &operation.selection_set.node,
                root,
                (registry, variables),
                &mut Vec::new(),
            )
        {
            return Some(error);
        }
    }
    None
}

fn check_variable(
    definition: &Positioned<VariableDefinition>,
    variables: &Variables,
    registry: &Registry,
) -> Option<ServerError> {
    let name = &definition.node.name.node;
    let value = variables
        .get(name)
        .or(definition.node.default_value.as_ref().map(|d| &d.node))?;
    let ty = definition.node.var_type.node.to_string();
    const_value(value, &ty, registry).map(|message| {
        ServerError::new(
            format!("Variable \"${name}\" got an invalid value: {message}"),
            Some(definition.pos),
        )
    })
}

fn check_set(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    parent: &str,
    context @ (registry, variables): (&Registry, &Variables),
    fragments: &mut Vec<Name>,
) -> Option<ServerError> {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                let Some(meta) = registry
                    .types
                    .get(parent)
                    .and_then(|t| t.field_by_name(&field.name.node))
                else {
                    // Unknown fields are for validation to name.
                    continue;
                };
                for (name, value) in &field.arguments {
                    // Variables in the value stand for what was given (checked on their own too).
                    let given = value.node.clone().into_const_with(|var| {
                        Ok::<_, std::convert::Infallible>(
                            variables.get(&var).cloned().unwrap_or(ConstValue::Null),
                        )
                    });
                    if let Some(arg) = meta.args.get(name.node.as_str())
                        && let Ok(given) = given
                        && let Some(message) = const_value(&given, &arg.ty, registry)
                    {
                        return Some(ServerError::new(
                            format!("Invalid value for argument \"{}\": {message}", name.node),
                            Some(value.pos),
                        ));
                    }
                }
                if let Some(error) = check_set(
                    doc,
                    &field.selection_set.node,
                    base(&meta.ty),
                    context,
                    fragments,
                ) {
                    return Some(error);
                }
            }
            Selection::InlineFragment(fragment) => {
                let on = fragment
                    .node
                    .type_condition
                    .as_ref()
                    .map_or(parent, |c| c.node.on.node.as_str());
                if let Some(error) = check_set(
                    doc,
                    &fragment.node.selection_set.node,
                    on,
                    context,
                    fragments,
                ) {
                    return Some(error);
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if fragments.contains(name) || fragments.len() > 64 {
                    continue;
                }
                let Some(fragment) = doc.fragments.get(name) else {
                    continue;
                };
                fragments.push(name.clone());
                let on = fragment.node.type_condition.node.on.node.clone();
                let found = check_set(
                    doc,
                    &fragment.node.selection_set.node,
                    &on,
                    context,
                    fragments,
                );
                fragments.pop();
                if found.is_some() {
                    return found;
                }
            }
        }
    }
    None
}

/// The named type inside `ty` (`[Int!]!` → `Int`).
fn base(ty: &str) -> &str {
    ty.trim_matches(|c| c == '[' || c == ']' || c == '!')
}

/// `ty` without its outer non-null mark, and whether it is a list (then the item type).
fn unwrap_list(ty: &str) -> Option<&str> {
    let ty = ty.strip_suffix('!').unwrap_or(ty);
    ty.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
}

fn int_out_of_range(n: &serde_json::Number) -> Option<String> {
    let fits = n.as_i64().is_some_and(|v| i32::try_from(v).is_ok());
    (!fits && (n.is_i64() || n.is_u64()))
        .then(|| format!("Int cannot represent {n}: only integers from -2147483648 to 2147483647"))
}

/// A value (an argument's, with its variables given, or a variable's) against its type.
fn const_value(value: &ConstValue, ty: &str, registry: &Registry) -> Option<String> {
    if let Some(item) = unwrap_list(ty) {
        return match value {
            ConstValue::List(items) => items.iter().find_map(|v| const_value(v, item, registry)),
            other => const_value(other, item, registry),
        };
    }
    match (base(ty), value) {
        ("Int", ConstValue::Number(n)) => int_out_of_range(n),
        (name, ConstValue::Object(fields)) => match registry.types.get(name) {
            Some(MetaType::InputObject { input_fields, .. }) => {
                fields.iter().find_map(|(field, v)| {
                    input_fields
                        .get(field.as_str())
                        .and_then(|f| const_value(v, &f.ty, registry))
                })
            }
            _ => None,
        },
        _ => None,
    }
}
