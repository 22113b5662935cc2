-- Cluster and database setup: one role and one schema per service.
-- Idempotent: run it on every start (make migrate) and in every throwaway test database.
-- Each role owns (and so may write) only its own schema; cross-schema reads go through
-- views that the owning service publishes and grants in its own migrations.
DO $$
DECLARE
    svc TEXT;
    pw  TEXT := coalesce(current_setting('gateway.role_password', true), 'gateway_dev');
BEGIN
    IF pw = '' THEN
        pw := 'gateway_dev';
    END IF;
    FOREACH svc IN ARRAY ARRAY['auth', 'payments', 'refunds', 'webhooks'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'svc_' || svc) THEN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', 'svc_' || svc, pw);
        ELSIF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'svc_' || svc) THEN
            -- A role of that name made by someone else (CREATE ROLE defaults to NOLOGIN).
            EXECUTE format('ALTER ROLE %I LOGIN', 'svc_' || svc);
        END IF;
        -- A managed PostgreSQL's admin is no superuser: it may give a role a schema only as a member of it.
        IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
           AND NOT pg_has_role(current_user, 'svc_' || svc, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', 'svc_' || svc, current_user);
        END IF;
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), 'svc_' || svc);
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', svc, 'svc_' || svc);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', svc, 'svc_' || svc);
        EXECUTE format('ALTER ROLE %I SET search_path = %I', 'svc_' || svc, svc);
    END LOOP;
    -- Nobody creates objects in public.
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    -- Schemas that publish read-only views to other services.
    GRANT USAGE ON SCHEMA auth TO svc_payments, svc_refunds, svc_webhooks;
    GRANT USAGE ON SCHEMA payments TO svc_refunds, svc_webhooks;
    GRANT USAGE ON SCHEMA refunds TO svc_payments, svc_webhooks;
END
$$;
