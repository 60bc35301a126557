{#- Contract v2 convention (docs/contract/feeds-v2.md): a facility id is
    <jurisdiction>-<local code>, the local code without hyphens, so the
    jurisdiction is the id up to its last hyphen (US-CA-SVSP -> US-CA,
    IT-MII152284 -> IT, NL-0042 -> NL). Ids without a hyphen: the id itself. -#}
{% macro jurisdiction(facility_id) -%}
    coalesce(nullif(regexp_extract({{ facility_id }}, '^(.*)-[^-]*$', 1), ''), {{ facility_id }})
{%- endmacro %}
