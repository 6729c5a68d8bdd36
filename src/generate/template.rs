//! Renders chat prompts with the Jinja template a model ships in its GGUF
//! (`tokenizer.chat_template`), the way Hugging Face `transformers` does (trim_blocks,
//! lstrip_blocks, `raise_exception`, the Python string methods templates call). Called by
//! [`super::GgufGenerator`] before tokenizing a prompt.

use std::collections::BTreeMap;

use candle_core::quantized::gguf_file::{Content, Value as GgufValue};
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use super::{GenerateError, Message};

const TEMPLATE_KEY: &str = "tokenizer.chat_template";
const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template and the special-token texts it may refer to.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source`; `bos_token` and `eos_token` are exposed to it as variables.
    pub fn new(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<Self, GenerateError> {
        let mut env = Environment::new();
        // transformers compiles chat templates with these Jinja settings.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function("raise_exception", raise_exception);
        env.set_unknown_method_callback(python_method);
        env.add_template_owned(TEMPLATE_NAME, source.into())
            .map_err(template_err)?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// Reads `tokenizer.chat_template` and the bos/eos token texts from GGUF metadata.
    pub fn from_gguf(content: &Content) -> Result<Self, GenerateError> {
        let source = match content.metadata.get(TEMPLATE_KEY) {
            Some(GgufValue::String(s)) => s.clone(),
            Some(_) => {
                return Err(GenerateError::BadMetadata {
                    key: TEMPLATE_KEY.into(),
                    reason: "not a string".into(),
                })
            }
            None => {
                return Err(GenerateError::MissingMetadata {
                    key: TEMPLATE_KEY.into(),
                })
            }
        };
        let token_text = |key: &str| -> String {
            let id = match content.metadata.get(key) {
                Some(GgufValue::U32(id)) => *id as usize,
                Some(GgufValue::I32(id)) => *id as usize,
                _ => return String::new(),
            };
            match content.metadata.get("tokenizer.ggml.tokens") {
                Some(GgufValue::Array(tokens)) => match tokens.get(id) {
                    Some(GgufValue::String(s)) => s.clone(),
                    _ => String::new(),
                },
                _ => String::new(),
            }
        };
        let bos = token_text("tokenizer.ggml.bos_token_id");
        let eos = token_text("tokenizer.ggml.eos_token_id");
        Self::new(source, bos, eos)
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the assistant's reply
    /// begins.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, GenerateError> {
        let messages: Vec<BTreeMap<&str, &str>> = messages
            .iter()
            .map(|m| BTreeMap::from([("role", m.role.as_str()), ("content", m.content.as_str())]))
            .collect();
        let template = self.env.get_template(TEMPLATE_NAME).map_err(template_err)?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(template_err)
    }
}

fn template_err(e: Error) -> GenerateError {
    let mut msg = e.to_string();
    if let Some(detail) = e.detail() {
        if !msg.contains(detail) {
            msg = format!("{msg}: {detail}");
        }
    }
    GenerateError::Template(msg)
}

/// `raise_exception(msg)`: templates call it to reject message orders they do not support.
fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

/// The Python `str`/`dict` methods chat templates call, which Jinja inherits from Python and
/// MiniJinja does not have.
fn python_method(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let arg_str = |i: usize| -> Result<Option<&str>, Error> {
        match args.get(i) {
            None => Ok(None),
            Some(v) if v.is_none() || v.is_undefined() => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{method}: expected a string"),
                )
            }),
        }
    };
    let arg_count = |max: usize| -> Result<(), Error> {
        if args.len() > max {
            Err(Error::from(ErrorKind::TooManyArguments))
        } else {
            Ok(())
        }
    };
    match (value.kind(), value.as_str()) {
        (ValueKind::String, Some(s)) => match method {
            "strip" | "lstrip" | "rstrip" => {
                arg_count(1)?;
                let chars = arg_str(0)?;
                let is_trimmed = |c: char| match chars {
                    Some(set) => set.contains(c),
                    None => c.is_whitespace(),
                };
                let out = match method {
                    "strip" => s.trim_matches(is_trimmed),
                    "lstrip" => s.trim_start_matches(is_trimmed),
                    _ => s.trim_end_matches(is_trimmed),
                };
                Ok(Value::from(out))
            }
            "startswith" | "endswith" => {
                arg_count(1)?;
                let affix = arg_str(0)?.ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
                let yes = if method == "startswith" {
                    s.starts_with(affix)
                } else {
                    s.ends_with(affix)
                };
                Ok(Value::from(yes))
            }
            "split" => {
                arg_count(2)?;
                let limit = match args.get(1) {
                    Some(v) => i64::try_from(v.clone())?,
                    None => -1,
                };
                let parts: Vec<Value> = match (arg_str(0)?, usize::try_from(limit).ok()) {
                    (Some(sep), None) => s.split(sep).map(Value::from).collect(),
                    (Some(sep), Some(n)) => s.splitn(n + 1, sep).map(Value::from).collect(),
                    (None, None) => s.split_whitespace().map(Value::from).collect(),
                    (None, Some(n)) => {
                        let mut rest = s.trim_start();
                        let mut parts = Vec::new();
                        while !rest.is_empty() && parts.len() < n {
                            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                            parts.push(Value::from(&rest[..end]));
                            rest = rest[end..].trim_start();
                        }
                        if !rest.is_empty() {
                            parts.push(Value::from(rest));
                        }
                        parts
                    }
                };
                Ok(Value::from(parts))
            }
            "upper" | "lower" | "title" | "capitalize" => {
                arg_count(0)?;
                state.apply_filter(method, std::slice::from_ref(value))
            }
            "replace" => {
                arg_count(3)?;
                let (Some(from), Some(to)) = (arg_str(0)?, arg_str(1)?) else {
                    return Err(Error::from(ErrorKind::MissingArgument));
                };
                match args.get(2) {
                    Some(n) => {
                        let n = usize::try_from(n.clone())?;
                        Ok(Value::from(s.replacen(from, to, n)))
                    }
                    None => Ok(Value::from(s.replace(from, to))),
                }
            }
            "find" => {
                arg_count(1)?;
                let needle = arg_str(0)?.ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
                Ok(Value::from(match s.find(needle) {
                    Some(byte) => s[..byte].chars().count() as i64,
                    None => -1,
                }))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        },
        (ValueKind::Map, _) => match method {
            "items" => {
                arg_count(0)?;
                state.apply_filter("items", std::slice::from_ref(value))
            }
            "keys" => {
                arg_count(0)?;
                Ok(Value::from(value.try_iter()?.collect::<Vec<_>>()))
            }
            "values" => {
                arg_count(0)?;
                let values = value
                    .try_iter()?
                    .map(|k| value.get_item(&k))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::from(values))
            }
            "get" => {
                arg_count(2)?;
                let key = args
                    .first()
                    .ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
                let found = value.get_item(key)?;
                Ok(if found.is_undefined() {
                    args.get(1).cloned().unwrap_or(Value::from(()))
                } else {
                    found
                })
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        },
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::Role;

    fn msgs() -> Vec<Message> {
        vec![
            Message {
                role: Role::System,
                content: "Be brief.".into(),
            },
            Message {
                role: Role::User,
                content: "Hi?".into(),
            },
        ]
    }

    #[test]
    fn renders_chatml_with_generation_prompt() {
        let t = ChatTemplate::new(
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
             {% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
            "",
            "<|im_end|>",
        )
        .unwrap();
        assert_eq!(
            t.render(&msgs(), true).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n\
             <|im_start|>assistant\n"
        );
    }

    #[test]
    fn trims_blocks_like_transformers() {
        let t = ChatTemplate::new(
            "{% for m in messages %}\n  {% if true %}\n[{{ m.role }}]\n  {% endif %}\n{% endfor %}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(t.render(&msgs(), false).unwrap(), "[system]\n[user]\n");
    }

    #[test]
    fn python_string_and_dict_methods() {
        let t = ChatTemplate::new(
            "{{ '  x y  '.strip() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'abc'.startswith('ab') }}|\
             {{ 'xxhixx'.strip('x') }}|{{ 'Hi'.upper() }}|{{ messages[0].get('nope', 'd') }}|\
             {% for k, v in messages[1].items() %}{{ k }}={{ v }};{% endfor %}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            t.render(&msgs(), false).unwrap(),
            "x y|[\"a\", \"b,c\"]|True|hi|HI|d|content=Hi?;role=user;"
        );
    }

    #[test]
    fn raise_exception_becomes_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let err = t.render(&msgs(), true).unwrap_err().to_string();
        assert!(err.contains("roles must alternate"), "{err}");
    }
}
